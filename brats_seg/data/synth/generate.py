"""One synthetic case (:func:`synthesize_case`): the template warped into the BraTS grid, a tumor,
per-sequence contrast, bias field and Rician noise.

On the BraTS grid (240x240x155 at 1 mm, axes as in BraTS files; ``spacing`` s gives
``round(240/s) x round(240/s) x round(155/s)``, 120x120x78 at 2 mm):

1. anatomy: random anisotropic scale (0.83-1.02 of the template, which is larger than
   the SRI24 brains of BraTS), rotation (±6°), shift (±5 mm) and a smooth per-axis
   nonlinear warp; mass effect pushes the tissue around the tumor outwards;
2. tumor at a random cerebral white-matter location (:mod:`.tumor`). Median volumes over
   30 seeds: WT 74 mL, TC 30 mL, ET 14 mL (BraTS: same order);
3. contrast per sequence from tissue and tumor compartments (:data:`CONTRAST`, relative to
   WM), per-case jitter, tumor texture at 4 and 10 mm;
4. smooth multiplicative bias field per sequence (shared + own), Rician noise (magnitude
   of a complex Gaussian), raw scanner-like int16 intensities, each sequence scaled by a
   random factor 0.5-2.5; background exactly 0 (skull-stripped), partial volume at edges.

Work is done on the list of voxels that can be brain, dense arrays only in a box around
the tumor, the bias field gathered from per-axis curves (``benchmarks/bench_synth.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...conventions import MODALITIES, regions_to_labels
from ...errors import BratsSegError
from .anatomy import Anatomy, load_anatomy
from .treatment import FLUID_LABEL, add_fluid
from .tumor import tumor_compartments
from .warp import Warp, candidate_voxels, sample_maps

BRATS_SHAPE = (240, 240, 155)
"""BraTS grid at 1 mm."""

# Mean intensity of each tissue/tumor compartment relative to white matter, per sequence. The
# tissue values follow the usual appearance (T1: WM > GM > CSF; T2: CSF > GM > WM; FLAIR: CSF dark).
# The tumor values were calibrated on the shared real BraTS cases: after z-scoring inside the brain
# (2 mm), the median of each compartment in each sequence matches theirs (benchmarks/bench_synth.py
# --calibration prints both): e.g. enhancing tumor z ~ +2 on T1-Gd, edema and necrosis z ~ +1.5-2
# on FLAIR, necrosis bright on T2 and slightly dark on T1/T1-Gd.
CONTRAST: Mapping[str, Mapping[str, float]] = {
    #           WM    GM    CSF   vessel necrosis  non-enh  enhancing edema
    "t1n": dict(wm=1.0, gm=0.74, csf=0.32, vessel=0.0, nec=0.72, net=0.85, enh=0.88, ed=0.90),
    "t1c": dict(wm=1.0, gm=0.77, csf=0.32, vessel=1.3, nec=0.70, net=0.86, enh=1.32, ed=0.93),
    "t2w": dict(wm=1.0, gm=1.35, csf=3.10, vessel=0.0, nec=2.00, net=1.70, enh=1.55, ed=1.60),
    "t2f": dict(wm=1.0, gm=1.25, csf=0.28, vessel=0.0, nec=1.40, net=1.45, enh=1.40, ed=1.40),
}
WM_LEVEL: Mapping[str, float] = {"t1n": 420.0, "t1c": 400.0, "t2w": 120.0, "t2f": 170.0}
"""Typical raw white-matter intensity (BraTS 2018 int16 files); each case scales it by 0.5-2.5."""


@dataclass
class SynthCase:
    """One synthetic case: ``images`` modality -> ``(H, W, D)`` int16 raw intensities,
    ``regions`` ``(3, H, W, D)`` bool (WT, TC, ET), ``affine`` 4x4 (BraTS-like), ``info``."""

    images: dict[str, np.ndarray]
    regions: np.ndarray
    affine: np.ndarray
    info: dict
    fluid: np.ndarray | None = None
    """``(H, W, D)`` bool: a resection cavity or cyst (:mod:`.treatment`), labelled ``fluid_label``."""
    fluid_label: int = 0

    def labels(self, scheme: str) -> np.ndarray:
        """Label map ``(H, W, D)`` uint8 in ``scheme`` (the fluid, if any, as ``fluid_label``)."""
        out = regions_to_labels(self.regions, scheme)
        if self.fluid is not None:
            out[self.fluid] = self.fluid_label
        return out


def grid_shape(spacing: float) -> tuple[int, int, int]:
    """The BraTS 240x240x155 field of view at ``spacing`` mm."""
    return tuple(max(8, int(round(n / spacing))) for n in BRATS_SHAPE)


def grid_affine(spacing: float) -> np.ndarray:
    """BraTS-style affine (x and y flipped, origin as in BraTS files) at ``spacing`` mm."""
    aff = np.diag([-spacing, -spacing, spacing, 1.0])
    aff[:3, 3] = (0.0, 239.0, 0.0)
    return aff


def _bias_tables(rng: np.random.Generator, shape: tuple[int, ...], amp: float) -> list[np.ndarray]:
    """Smooth random log-bias curves along each axis (two Fourier terms), float32."""
    curves = []
    for n in shape:
        x = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        c = np.zeros(n, np.float32)
        for k in (1, 2):
            phase = np.float32(rng.uniform(0, 2 * np.pi))
            c += np.float32(rng.normal(0, amp / k)) * np.sin(np.float32(np.pi * k) * x + phase)
        curves.append(c)
    return curves


@dataclass
class _Brain:
    """The brain voxels of the output grid: indices ``ix, iy, iz`` and ``flat`` ``(N,)``, tissue
    fractions ``(4, N)`` (WM, GM, CSF, vessel), squared mm ``d2`` ``(N,)`` to the tumor ``centre``."""

    ix: np.ndarray
    iy: np.ndarray
    iz: np.ndarray
    flat: np.ndarray
    tissue: np.ndarray
    d2: np.ndarray
    centre: np.ndarray


def _brain(rng: np.random.Generator, anat: Anatomy, shape: tuple[int, ...], spacing: float) -> _Brain:
    """Warp the template into the grid, pick the tumor centre, push the tissue around it (mass effect)."""
    warp = Warp(rng, anat, shape, spacing)
    ix, iy, iz = candidate_voxels(warp, anat)
    grid = warp.grid(ix, iy, iz)
    # tumor centre: a cerebral white-matter voxel of the template, found in the output grid
    target = anat.candidates[rng.integers(len(anat.candidates))]
    centre = np.clip(np.rint(warp.inverse(target)), 0, np.asarray(shape) - 1).astype(int)
    g_centre = warp.grid(*(centre[a:a + 1] for a in range(3)))[0]
    d2 = np.square((ix - centre[0]).astype(np.float32))
    d2 += np.square((iy - centre[1]).astype(np.float32))
    d2 += np.square((iz - centre[2]).astype(np.float32))
    d2 *= np.float32(spacing**2)  # squared mm from the centre
    # mass effect: within `push` mm of the centre, voxels sample template points closer to it
    # (squeeze 1 - k (1 - r^2/R^2)^2 keeps the map monotone for k < 1 and is 1 at r = R)
    k, push = rng.uniform(0.1, 0.35), rng.uniform(20.0, 40.0)
    near = np.flatnonzero(d2 < push**2)
    squeeze = 1.0 - np.float32(k) * np.square(1.0 - d2[near] * np.float32(1 / push**2))
    grid[near] = g_centre + (grid[near] - g_centre) * squeeze[:, None]
    tissue = sample_maps(anat.maps, grid)  # (4, N): WM, GM, CSF, vessel
    total = tissue[:3].sum(0)
    keep = np.flatnonzero(total > 0.5)  # skull-stripped: the brain, and nothing else
    ix, iy, iz, d2, tissue = ix[keep], iy[keep], iz[keep], d2[keep], tissue[:, keep]
    tissue[:3] /= total[keep]
    return _Brain(ix, iy, iz, (ix * shape[1] + iy) * shape[2] + iz, tissue, d2, centre)


def _tumor(rng: np.random.Generator, brain: _Brain, spacing: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(indices into the brain voxels within the tumor's reach, their tumor compartments)."""
    r_core, f_edema = max(rng.uniform(8.0, 28.0), 2.5 * spacing), rng.uniform(1.3, 2.3)
    reach = float(min(90.0, 1.9 * r_core * f_edema + 4.0))
    inbox = np.flatnonzero(brain.d2 < reach**2)
    c = brain.centre
    u = np.stack([(brain.ix[inbox] - c[0]), (brain.iy[inbox] - c[1]), (brain.iz[inbox] - c[2])]).astype(np.float32)
    u *= np.float32(spacing)
    parts = tumor_compartments(rng, u, brain.tissue[0, inbox], brain.tissue[2, inbox], reach, spacing, r_core,
                               f_edema)
    return inbox, parts


def _cross_bias(rng: np.random.Generator, brain: _Brain, shape: tuple[int, ...]) -> np.ndarray:
    """The bias field's cross terms at the brain voxels (multiplicative, ``(N,)``)."""
    unit = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    cross = np.float32(rng.normal(0, 0.05)) * unit[0][brain.ix] * unit[1][brain.iy]
    cross += np.float32(rng.normal(0, 0.05)) * unit[1][brain.iy] * unit[2][brain.iz]
    cross += np.float32(rng.normal(0, 0.05)) * unit[0][brain.ix] * unit[2][brain.iz]
    return np.exp(cross)


def _sequence(rng: np.random.Generator, m: str, brain: _Brain, inbox: np.ndarray, parts: dict[str, np.ndarray],
              bias: tuple[np.ndarray, list[np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """Sequence ``m`` as raw int16 ``shape``: contrast, tumor, bias (``(cross, shared curves)``), noise."""
    # per-case jitter: +-8 % for healthy tissue, wider around 1 for the tumor (real tumors vary more)
    con = {key: v * rng.uniform(0.92, 1.08) if key in ("gm", "csf", "vessel") else
           1.0 + (v - 1.0) * rng.uniform(0.6, 1.4) for key, v in CONTRAST[m].items()}
    con["wm"] = 1.0
    level = WM_LEVEL[m] * math.exp(rng.uniform(math.log(0.5), math.log(2.5)))
    weights = [con["wm"], con["gm"], con["csf"], con["vessel"] * rng.uniform(0.5, 1.0)]
    values = np.asarray(weights, dtype=np.float32) @ brain.tissue  # one pass over the (4, N) tissue maps
    sub = values[inbox]
    for name, key in (("edema", "ed"), ("core", "net"), ("nec", "nec"), ("enh", "enh")):
        sub += parts[name] * (np.float32(con[key]) * parts["texture"] - sub)
    values[inbox] = sub
    cross, shared = bias
    own = _bias_tables(rng, shape, 0.04)
    curves = [np.exp(a + b) for a, b in zip(shared, own)]
    curves[0] *= np.float32(level)  # the sequence's raw intensity scale rides along
    values *= cross
    values *= curves[0][brain.ix]
    values *= curves[1][brain.iy]
    values *= curves[2][brain.iz]
    n_vox = len(values)
    sigma_n = np.float32(level * rng.uniform(0.015, 0.045))
    values += sigma_n * rng.standard_normal(n_vox, dtype=np.float32)
    im = sigma_n * rng.standard_normal(n_vox, dtype=np.float32)
    values = np.hypot(values, im, out=values)  # Rician: magnitude of a complex Gaussian
    out = np.zeros(shape, np.int16)
    out.reshape(-1)[brain.flat] = np.clip(np.rint(values), 1, 32767)
    return out


def synthesize_case(seed: int, spacing: float = 1.0, scheme: str | None = None) -> SynthCase:
    """One synthetic case from ``seed`` (deterministic) on the BraTS field of view at ``spacing`` mm;
    ``scheme`` brats2024-gli adds a resection cavity, brats2024-ped a cyst (:mod:`.treatment`)."""
    if not spacing > 0:
        raise BratsSegError(f"spacing must be positive, got {spacing}")
    rng = np.random.default_rng(seed)
    shape = grid_shape(spacing)
    brain = _brain(rng, load_anatomy(float(spacing)), shape, spacing)
    inbox, parts = _tumor(rng, brain, spacing)
    bias = (_cross_bias(rng, brain, shape), _bias_tables(rng, shape, 0.08))
    images = {m: _sequence(rng, m, brain, inbox, parts, bias, shape) for m in MODALITIES}
    regions = np.zeros((3, *shape), bool)
    sel = brain.flat[inbox]
    for r, name in enumerate(("WT", "TC", "ET")):
        regions[r].reshape(-1)[sel[parts[name]]] = True
    fluid, fluid_label = None, 0
    if scheme in FLUID_LABEL:
        fluid, fluid_label = add_fluid(images, regions, scheme, rng, CONTRAST), FLUID_LABEL[scheme]
    info = {"seed": int(seed), "spacing": float(spacing), "tumor_centre": [int(c) for c in brain.centre],
            "brain_voxels": int(len(brain.flat)),
            "voxels": {r: int(regions[i].sum()) for i, r in enumerate(("WT", "TC", "ET"))}}
    if fluid is not None:
        info["voxels"]["fluid"] = int(fluid.sum())
    return SynthCase(images, regions, grid_affine(spacing), info, fluid, fluid_label)
