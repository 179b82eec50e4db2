"""Placing the template in a synthetic case's grid: a random rotation, scale, shift and smooth
per-axis warp (:class:`Warp`), trilinear sampling with one ``grid_sample`` call
(:func:`sample_maps`), and the output voxels that can hold brain (:func:`candidate_voxels`)."""

from __future__ import annotations

import numpy as np

from .anatomy import Anatomy


def rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    (cx, cy, cz), (sx, sy, sz) = np.cos(a), np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_orthogonal(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


class Warp:
    """Output voxel -> template voxel: ``t = c_t + R w(u) / s`` with ``u`` the output position in mm
    from the brain centre and ``w`` a per-axis smooth warp ``u / scale + amp sin(2 pi u / period + phase)``
    (monotone: ``scale * amp * 2 pi / period < 0.35``).

    Because ``w`` acts per axis, each template coordinate is a sum of three 1-D tables indexed by
    the output voxel's three indices: :meth:`grid` costs three gathers per coordinate. Coordinates
    are kept as ``grid_sample`` wants them: normalised to [-1, 1], in (z, y, x) order.
    """

    def __init__(self, rng: np.random.Generator, anat: Anatomy, shape: tuple[int, ...], spacing: float):
        self.s, self.anat, self.shape = spacing, anat, shape
        self.scale = rng.uniform(0.86, 0.98) * rng.uniform(0.96, 1.04, 3)  # template brains are large
        self.rot = rotation(rng, 6.0)
        self.centre = (np.array([118.0, 131.0, 73.0]) + rng.uniform(-5, 5, 3)) / spacing  # as in BraTS files
        self.amp = rng.uniform(0, 3.5, 3)
        self.period = rng.uniform(70, 140, 3)
        self.phase = rng.uniform(0, 2 * np.pi, 3)
        size = np.asarray(anat.maps.shape[1:], dtype=np.float64)
        self.norm_scale = 2.0 / (size - 1)  # template voxel -> [-1, 1]
        warped = []
        for a in range(3):
            u = (np.arange(shape[a]) - self.centre[a]) * spacing
            warped.append(u / self.scale[a] + self.amp[a] * np.sin(2 * np.pi * u / self.period[a] + self.phase[a]))
        # tables[j][a]: contribution of output axis a to grid coordinate j (j = 0: template z, 1: y, 2: x)
        self.tables = []
        for c in (2, 1, 0):
            k = self.norm_scale[c] / spacing
            self.tables.append([(self.rot[c, a] * k * warped[a]).astype(np.float32) for a in range(3)])
        self.offset = (anat.centre[[2, 1, 0]] * self.norm_scale[[2, 1, 0]] - 1.0).astype(np.float32)

    def box(self, margin_mm: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
        """Output index range [lo, hi) that can hold brain."""
        half_t = np.asarray(self.anat.maps.shape[1:]) / 2.0 * self.s
        half_o = np.abs(self.rot.T) @ half_t * self.scale + margin_mm
        lo = np.clip(np.floor(self.centre - half_o / self.s), 0, self.shape).astype(int)
        hi = np.clip(np.ceil(self.centre + half_o / self.s) + 1, 0, self.shape).astype(int)
        return lo, hi

    def grid(self, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
        """Normalised template coordinates ``(N, 3)`` float32, (z, y, x) order, of output voxels."""
        out = np.empty((len(ix), 3), np.float32)
        for j, (tx, ty, tz) in enumerate(self.tables):
            col = tx[ix] + ty[iy]
            col += tz[iz]
            col += self.offset[j]
            out[:, j] = col
        return out

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """Output voxel (continuous) that maps to template voxel ``t`` (fixed-point per axis)."""
        w = self.rot.T @ (np.asarray(t, dtype=np.float64) - self.anat.centre) * self.s
        u = w * self.scale
        for _ in range(30):  # contraction: |d/du| = scale * amp * 2 pi / period < 0.35
            u = self.scale * (w - self.amp * np.sin(2 * np.pi * u / self.period + self.phase))
        return u / self.s + self.centre


def sample_maps(volumes: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Trilinear samples ``(C, N)`` of ``volumes`` ``(C, X, Y, Z)`` at normalised (z, y, x) coordinates
    ``grid`` ``(N, 3)`` in [-1, 1] (``align_corners=True``); 0 outside. One ``grid_sample`` call."""
    import torch
    import torch.nn.functional as F

    g = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))
    out = F.grid_sample(torch.from_numpy(np.ascontiguousarray(volumes))[None], g[None, None, None],
                        mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, :, 0, 0].numpy()


def candidate_voxels(warp: Warp, anat: Anatomy) -> tuple[np.ndarray, ...]:
    """Output voxels that may be brain: a 2x coarser pass over the box, dilated by one coarse voxel."""
    from scipy import ndimage as ndi

    lo, hi = warp.box()
    coarse = [np.arange(a, b, 2) for a, b in zip(lo, hi)]
    cx, cy, cz = (g.ravel() for g in np.meshgrid(*coarse, indexing="ij"))
    brain = sample_maps(anat.maps[:3], warp.grid(cx, cy, cz)).sum(0) > 0.02
    brain = ndi.binary_dilation(brain.reshape([len(c) for c in coarse]))
    fine = brain.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: hi[0] - lo[0], : hi[1] - lo[1], : hi[2] - lo[2]]
    ix, iy, iz = np.nonzero(fine)
    return ix + lo[0], iy + lo[1], iz + lo[2]

