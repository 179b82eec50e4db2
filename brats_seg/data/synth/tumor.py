"""A synthetic tumor: core, necrosis, enhancing rim and edema as soft compartments with
low-frequency noise on their borders (:func:`tumor_compartments`)."""

from __future__ import annotations

import numpy as np

from .warp import random_orthogonal, sample_maps


def lattice_noise(rng: np.random.Generator, n: int, cells: int, grid: np.ndarray) -> np.ndarray:
    """``n`` low-frequency noise fields sampled at ``grid`` ``(M, 3)`` (normalised): Gaussian noise
    on a ``cells``^3 lattice spanning [-1, 1]^3, trilinearly interpolated, clipped to ±2. ``(n, M)``."""
    lattice = rng.standard_normal((n, cells, cells, cells)).astype(np.float32)
    return np.clip(sample_maps(lattice, grid), -2.0, 2.0)


def soft_step(x: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume weight of ``x > 0`` with a linear ramp ``width`` wide: float32 in [0, 1]."""
    out = x * np.float32(1.0 / width)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def tumor_compartments(rng: np.random.Generator, u: np.ndarray, wm: np.ndarray, csf: np.ndarray, reach: float,
                       spacing: float, r_core: float, f_edema: float) -> dict[str, np.ndarray]:
    """Tumor compartments at the brain voxels near its centre, given their offsets ``u`` ``(3, M)`` mm
    (all within ``reach`` mm) and their WM and CSF fractions ``(M,)``: weights in [0, 1] for edema,
    core, necrosis and enhancing rim, texture, and the nested hard masks ``WT``, ``TC``, ``ET``.

    Core: an ellipsoid (radius ``r_core`` mm) with low-frequency noise on its radius; necrosis inside
    with an uneven border; a rim that enhances in irregular patches; edema ``f_edema`` times the core
    size, reaching much further in white than in grey matter (``0.3 + 0.8 WM``) and never into CSF.
    """
    s = spacing
    grid = np.ascontiguousarray((u[::-1] / np.float32(reach)).T)  # (M, 3), (z, y, x), in [-1, 1]
    noise = lattice_noise(rng, 5, max(3, int(round(2 * reach / 10))), grid)  # ~10 mm features
    fine = lattice_noise(rng, 1, max(3, int(round(2 * reach / 4))), grid)[0]  # ~4 mm features

    def radius(axes_mm, rot, n, amp):
        v = (rot / axes_mm[:, None]).astype(np.float32) @ u
        r = np.sqrt(np.einsum("ij,ij->j", v, v))
        return r / (1.0 + np.float32(amp) * n)

    rho = radius(r_core * rng.uniform(0.75, 1.25, 3), random_orthogonal(rng), noise[0], 0.3)
    rho_ed = radius(r_core * f_edema * rng.uniform(0.8, 1.2, 3), random_orthogonal(rng), noise[1], 0.3)
    ramp = s / r_core  # one voxel, in units of the core radius
    r_nec = rng.uniform(0.45, 0.8)
    core = soft_step(1.0 - rho, ramp)
    nec = soft_step(r_nec * (1.0 + np.float32(0.25) * noise[4]) - rho, ramp) * core  # rim of uneven thickness
    rim = core - nec
    enh = rim * soft_step(noise[2] - np.float32(rng.uniform(-1.4, 0.2)), 0.4)
    edema = soft_step(0.3 + 0.8 * wm - rho_ed, ramp / f_edema) * soft_step(0.5 - csf, 0.3)
    edema = np.maximum(edema, core)  # the whole tumor contains the core

    # every case shows all three regions
    hard_core, hard_enh = core > 0.5, enh > 0.5
    if hard_enh.sum() < 0.25 * (rim > 0.5).sum() or not hard_enh.any():
        enh = rim.copy()
        hard_enh = enh > 0.5
    if not hard_enh.any():
        enh = core * soft_step(rho - 0.6, ramp)
    if not (hard_core & ~(enh > 0.5)).any():
        nec = core * soft_step(0.5 - rho, ramp)
        enh = np.minimum(enh, core - nec)
    if not ((edema > 0.5) & ~hard_core).any():
        edema = np.maximum(edema, soft_step(1.6 - rho, ramp))
    tc = core > 0.5
    masks = {"WT": (edema > 0.5) | tc, "TC": tc, "ET": (enh > 0.5) & tc}
    texture = 1.0 + np.float32(0.07) * noise[3] + np.float32(0.10) * fine  # heterogeneity at 10 and 4 mm
    edema *= np.float32(rng.uniform(0.9, 1.0))  # edema changes the tissue's signal, keeps some structure
    return {"edema": edema, "core": core, "nec": nec, "enh": enh, "texture": texture, **masks}

