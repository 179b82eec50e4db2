"""Synthetic BraTS-like cases: real brain anatomy, per-sequence tissue contrast, tumors, bias, noise.

Anatomy source: the MNI ICBM152 2009a nonlinear symmetric template (Fonov et al.,
NeuroImage 2011) that nilearn ships *inside its wheel*
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``,
197x233x189 at 1 mm). We chose it because it is (1) real human anatomy at the
resolution BraTS uses, with grey/white-matter probability maps from which each
MR sequence's contrast can be derived, (2) already installed with a declared
dependency, so nothing is downloaded at run time, and (3) freely redistributable.
Its limits: it is one averaged brain (smoother than a single subject), so each
case gets its own affine and smooth nonlinear deformation, mass effect, bias
field and noise. CSF is what lies inside the (closed, hole-filled) brain but is
neither GM nor WM: the sulci and ventricles.

Per case (seed ``seed + i``), on the BraTS grid (240x240x155 at 1 mm, axes as in BraTS
files; ``spacing`` s gives ``round(240/s) x round(240/s) x round(155/s)``, 120x120x78 at 2 mm):

1. anatomy: random anisotropic scale (0.83-1.02 of the template, which is larger than
   the SRI24 brains of BraTS), rotation (±6°), shift (±5 mm) and a smooth per-axis
   nonlinear warp; mass effect pushes the tissue around the tumor outwards;
2. tumor at a random cerebral white-matter location: core = an ellipsoid (radius
   8-28 mm) whose radius is perturbed by low-frequency noise; necrotic centre of uneven
   size, enhancing rim in irregular patches (the rest non-enhancing), edema 1.3-2.3 times
   the core size reaching much further in white than in grey matter and never into CSF.
   Median volumes over 30 seeds: WT 74 mL, TC 30 mL, ET 14 mL (BraTS: same order);
3. contrast per sequence from tissue and tumor compartments (:data:`CONTRAST`, relative to
   WM; T1: WM > GM > CSF; T1-Gd: as T1 plus enhancing rim and vessels; T2: CSF > GM > WM;
   FLAIR: CSF dark, GM > WM, edema bright), per-case jitter, tumor texture at 4 and 10 mm;
4. smooth multiplicative bias field per sequence (shared + own), Rician noise (magnitude
   of a complex Gaussian), raw scanner-like int16 intensities, each sequence scaled by a
   random factor 0.5-2.5; background exactly 0 (skull-stripped), partial volume at edges.

Speed: work is done on the list of voxels that can be brain (a 2x coarser pass finds
them), with one ``torch.nn.functional.grid_sample`` for the warp, dense arrays only in a
box around the tumor, and the bias field gathered from per-axis curves. Timing:
``benchmarks/bench_synth.py``.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..conventions import MODALITIES, MSD_CHANNEL_ORDER, get_scheme, regions_to_labels
from ..errors import BratsSegError
from .io import Image, atomic_path, write_image

BRATS_SHAPE = (240, 240, 155)
"""BraTS grid at 1 mm."""

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

TISSUES = ("wm", "gm", "csf", "vessel")
"""Channels of the anatomy maps: tissue probabilities plus a vessel map (bright on T1-Gd)."""

# Mean intensity of each tissue/tumor compartment relative to white matter, per sequence.
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

# output file naming per layout: (case id format, file name format, modality -> file tag)
LAYOUT_FILES: Mapping[str, tuple[str, str, Mapping[str, str]]] = {
    "brats2021": ("BraTS2021_{:05d}", "{case}/{case}_{tag}.nii.gz",
                  {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair", "label": "seg"}),
    "brats2023": ("BraTS-GLI-{:05d}-000", "{case}/{case}-{tag}.nii.gz",
                  {"t1n": "t1n", "t1c": "t1c", "t2w": "t2w", "t2f": "t2f", "label": "seg"}),
    "msd": ("BRATS_{:03d}", "{tag}/{case}.nii.gz", {"image": "imagesTr", "label": "labelsTr"}),
}
LAYOUT_SCHEMES = {"brats2021": "brats2021", "brats2023": "brats2023", "msd": "msd"}

MSD_DATASET = {
    "name": "BRATS", "description": "synthetic cases written by brats-seg synth (MNI ICBM152 anatomy)",
    "tensorImageSize": "4D", "reference": "MNI ICBM152 2009a template (Fonov et al. 2011), via nilearn",
    "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
    "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
}


# --------------------------------------------------------------------------- the template

def template_dir() -> Path:
    """Folder of nilearn's packaged MNI ICBM152 2009a files (inside the installed wheel).

    Found with ``importlib.util.find_spec`` so nilearn itself (seconds to import) is never imported."""
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise BratsSegError("synthetic data needs nilearn (pip install nilearn): its wheel ships the MNI template")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    missing = [f for f in TEMPLATE_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise BratsSegError(f"{folder}: nilearn's MNI template files are missing ({', '.join(missing)})")
    return folder


@dataclass(frozen=True)
class Anatomy:
    """Tissue maps ``(4, X, Y, Z)`` float32 (WM, GM, CSF, vessel) at ``spacing`` mm, in BraTS
    axis order, cropped to the brain; ``candidates`` (N, 3) voxel positions allowed as tumor
    centres (cerebral white matter)."""

    maps: np.ndarray
    candidates: np.ndarray
    spacing: float

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.maps.shape[1:], dtype=np.float64) - 1) / 2


@functools.lru_cache(maxsize=1)
def _template_1mm() -> tuple[np.ndarray, np.ndarray]:
    """Tissue maps at 1 mm in BraTS axis order, and tumor-centre candidates. Cached per process."""
    import nibabel as nib
    from scipy import ndimage as ndi

    folder = template_dir()
    imgs = {k: nib.load(str(folder / f)) for k, f in TEMPLATE_FILES.items() if k != "t1"}
    gm = np.asanyarray(imgs["gm"].dataobj)
    wm = np.asanyarray(imgs["wm"].dataobj)
    affine = imgs["gm"].affine
    # crop to the brain (plus room for morphology) before any 3-D work
    rough = (gm.astype(np.uint16) + wm) > 51
    idx = np.argwhere(rough)
    lo, hi = np.maximum(idx.min(0) - 6, 0), np.minimum(idx.max(0) + 7, rough.shape)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    gm = gm[crop].astype(np.float32) / 255.0
    wm = wm[crop].astype(np.float32) / 255.0
    tissue = gm + wm
    # brain = GM+WM closed (sulci) and hole-filled (ventricles); CSF is the rest of it
    brain = ndi.binary_fill_holes(ndi.binary_closing(tissue > 0.2, iterations=3))
    over = np.maximum(tissue, 1.0)
    gm, wm = gm / over * brain, wm / over * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    # vessels: a fixed sparse pattern of blobs in CSF and at the surface (cortical veins, choroid plexus)
    rng = np.random.default_rng(20111)
    noise = ndi.gaussian_filter(rng.standard_normal(gm.shape, dtype=np.float32), 1.2)
    surface = brain & ~ndi.binary_erosion(brain, iterations=3)
    vessel = ((noise > 2.3 * noise.std()) & ((csf > 0.4) | surface)).astype(np.float32)
    vessel = ndi.gaussian_filter(vessel, 0.6) * brain
    maps = np.stack([wm, gm, csf, vessel]).astype(np.float32)

    # tumor centres: cerebral white matter (not cerebellum/brainstem), judged in MNI mm
    ijk = np.argwhere((wm > 0.6) & brain)
    x, y, z = ((ijk + lo) @ affine[:3, :3].T + affine[:3, 3]).T
    candidates = ijk[(z > -30) & ~((y < -40) & (z < -12)) & ~((np.abs(x) < 14) & (z < 4))]

    # MNI arrays are RAS (+x right, +y anterior); BraTS arrays run x and y the other way
    shape = np.asarray(maps.shape[1:])
    maps = np.ascontiguousarray(maps[:, ::-1, ::-1])
    candidates = candidates.copy()
    candidates[:, :2] = shape[:2] - 1 - candidates[:, :2]
    return maps, candidates


@functools.lru_cache(maxsize=4)
def load_anatomy(spacing: float = 1.0) -> Anatomy:
    """The template's tissue maps resampled to ``spacing`` mm (pre-smoothed against aliasing).
    Cached per process and spacing."""
    from scipy import ndimage as ndi

    maps, candidates = _template_1mm()
    if spacing != 1.0:
        sigma = max(0.0, 0.42 * (spacing - 1.0))
        maps = np.stack([ndi.zoom(ndi.gaussian_filter(m, sigma) if sigma else m, 1.0 / spacing, order=1,
                                  grid_mode=True, mode="nearest") for m in maps])
        candidates = (candidates + 0.5) / spacing - 0.5
    return Anatomy(np.ascontiguousarray(maps, dtype=np.float32), np.asarray(candidates, np.float64),
                   float(spacing))


# --------------------------------------------------------------------------- one case

@dataclass
class SynthCase:
    """One synthetic case: ``images`` modality -> ``(H, W, D)`` int16 raw intensities,
    ``regions`` ``(3, H, W, D)`` bool (WT, TC, ET), ``affine`` 4x4 (BraTS-like), ``info``."""

    images: dict[str, np.ndarray]
    regions: np.ndarray
    affine: np.ndarray
    info: dict

    def labels(self, scheme: str) -> np.ndarray:
        """Label map ``(H, W, D)`` uint8 in ``scheme``."""
        return regions_to_labels(self.regions, scheme)


def grid_shape(spacing: float) -> tuple[int, int, int]:
    """The BraTS 240x240x155 field of view at ``spacing`` mm."""
    return tuple(max(8, int(round(n / spacing))) for n in BRATS_SHAPE)


def grid_affine(spacing: float) -> np.ndarray:
    """BraTS-style affine (x and y flipped, origin as in BraTS files) at ``spacing`` mm."""
    aff = np.diag([-spacing, -spacing, spacing, 1.0])
    aff[:3, 3] = (0.0, 239.0, 0.0)
    return aff


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    (cx, cy, cz), (sx, sy, sz) = np.cos(a), np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _random_orthogonal(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


class _Warp:
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
        self.rot = _rotation(rng, 6.0)
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


def _sample(volumes: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Trilinear samples ``(C, N)`` of ``volumes`` ``(C, X, Y, Z)`` at normalised (z, y, x) coordinates
    ``grid`` ``(N, 3)`` in [-1, 1] (``align_corners=True``); 0 outside. One ``grid_sample`` call."""
    import torch
    import torch.nn.functional as F

    g = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))
    out = F.grid_sample(torch.from_numpy(np.ascontiguousarray(volumes))[None], g[None, None, None],
                        mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, :, 0, 0].numpy()


def _candidate_voxels(warp: _Warp, anat: Anatomy) -> tuple[np.ndarray, ...]:
    """Output voxels that may be brain: a 2x coarser pass over the box, dilated by one coarse voxel."""
    from scipy import ndimage as ndi

    lo, hi = warp.box()
    coarse = [np.arange(a, b, 2) for a, b in zip(lo, hi)]
    cx, cy, cz = (g.ravel() for g in np.meshgrid(*coarse, indexing="ij"))
    brain = _sample(anat.maps[:3], warp.grid(cx, cy, cz)).sum(0) > 0.02
    brain = ndi.binary_dilation(brain.reshape([len(c) for c in coarse]))
    fine = brain.repeat(2, 0).repeat(2, 1).repeat(2, 2)[: hi[0] - lo[0], : hi[1] - lo[1], : hi[2] - lo[2]]
    ix, iy, iz = np.nonzero(fine)
    return ix + lo[0], iy + lo[1], iz + lo[2]


def _lattice_noise(rng: np.random.Generator, n: int, cells: int, grid: np.ndarray) -> np.ndarray:
    """``n`` low-frequency noise fields sampled at ``grid`` ``(M, 3)`` (normalised): Gaussian noise
    on a ``cells``^3 lattice spanning [-1, 1]^3, trilinearly interpolated, clipped to ±2. ``(n, M)``."""
    lattice = rng.standard_normal((n, cells, cells, cells)).astype(np.float32)
    return np.clip(_sample(lattice, grid), -2.0, 2.0)


def _soft(x: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume weight of ``x > 0`` with a linear ramp ``width`` wide: float32 in [0, 1]."""
    out = x * np.float32(1.0 / width)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def _tumor(rng: np.random.Generator, u: np.ndarray, wm: np.ndarray, csf: np.ndarray, reach: float,
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
    noise = _lattice_noise(rng, 5, max(3, int(round(2 * reach / 10))), grid)  # ~10 mm features
    fine = _lattice_noise(rng, 1, max(3, int(round(2 * reach / 4))), grid)[0]  # ~4 mm features

    def radius(axes_mm, rot, n, amp):
        v = (rot / axes_mm[:, None]).astype(np.float32) @ u
        r = np.sqrt(np.einsum("ij,ij->j", v, v))
        return r / (1.0 + np.float32(amp) * n)

    rho = radius(r_core * rng.uniform(0.75, 1.25, 3), _random_orthogonal(rng), noise[0], 0.3)
    rho_ed = radius(r_core * f_edema * rng.uniform(0.8, 1.2, 3), _random_orthogonal(rng), noise[1], 0.3)
    ramp = s / r_core  # one voxel, in units of the core radius
    r_nec = rng.uniform(0.45, 0.8)
    core = _soft(1.0 - rho, ramp)
    nec = _soft(r_nec * (1.0 + np.float32(0.25) * noise[4]) - rho, ramp) * core  # rim of uneven thickness
    rim = core - nec
    enh = rim * _soft(noise[2] - np.float32(rng.uniform(-1.4, 0.2)), 0.4)
    edema = _soft(0.3 + 0.8 * wm - rho_ed, ramp / f_edema) * _soft(0.5 - csf, 0.3)
    edema = np.maximum(edema, core)  # the whole tumor contains the core

    # every case shows all three regions
    hard_core, hard_enh = core > 0.5, enh > 0.5
    if hard_enh.sum() < 0.25 * (rim > 0.5).sum() or not hard_enh.any():
        enh = rim.copy()
        hard_enh = enh > 0.5
    if not hard_enh.any():
        enh = core * _soft(rho - 0.6, ramp)
    if not (hard_core & ~(enh > 0.5)).any():
        nec = core * _soft(0.5 - rho, ramp)
        enh = np.minimum(enh, core - nec)
    if not ((edema > 0.5) & ~hard_core).any():
        edema = np.maximum(edema, _soft(1.6 - rho, ramp))
    tc = core > 0.5
    masks = {"WT": (edema > 0.5) | tc, "TC": tc, "ET": (enh > 0.5) & tc}
    texture = 1.0 + np.float32(0.07) * noise[3] + np.float32(0.10) * fine  # heterogeneity at 10 and 4 mm
    edema *= np.float32(rng.uniform(0.9, 1.0))  # edema changes the tissue's signal, keeps some structure
    return {"edema": edema, "core": core, "nec": nec, "enh": enh, "texture": texture, **masks}


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


def synthesize_case(seed: int, spacing: float = 1.0) -> SynthCase:
    """One synthetic case from ``seed`` (deterministic) on the BraTS field of view at ``spacing`` mm."""
    if not spacing > 0:
        raise BratsSegError(f"spacing must be positive, got {spacing}")
    rng = np.random.default_rng(seed)
    anat = load_anatomy(float(spacing))
    shape = grid_shape(spacing)
    warp = _Warp(rng, anat, shape, spacing)
    ix, iy, iz = _candidate_voxels(warp, anat)
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

    tissue = _sample(anat.maps, grid)  # (4, N): WM, GM, CSF, vessel
    total = tissue[:3].sum(0)
    keep = np.flatnonzero(total > 0.5)  # skull-stripped: the brain, and nothing else
    ix, iy, iz, d2, tissue = ix[keep], iy[keep], iz[keep], d2[keep], tissue[:, keep]
    tissue[:3] /= total[keep]
    n_vox = len(keep)
    flat = (ix * shape[1] + iy) * shape[2] + iz

    # tumor, at the brain voxels within `reach` mm of its centre
    r_core, f_edema = max(rng.uniform(8.0, 28.0), 2.5 * spacing), rng.uniform(1.3, 2.3)
    reach = float(min(90.0, 1.9 * r_core * f_edema + 4.0))
    inbox = np.flatnonzero(d2 < reach**2)
    u = np.stack([(ix[inbox] - centre[0]), (iy[inbox] - centre[1]), (iz[inbox] - centre[2])]).astype(np.float32)
    u *= np.float32(spacing)
    parts = _tumor(rng, u, tissue[0, inbox], tissue[2, inbox], reach, spacing, r_core, f_edema)

    # bias field: shared + per-sequence smooth curves along each axis (exp taken on the tables), cross terms
    unit = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    cross = np.float32(rng.normal(0, 0.05)) * unit[0][ix] * unit[1][iy]
    cross += np.float32(rng.normal(0, 0.05)) * unit[1][iy] * unit[2][iz]
    cross += np.float32(rng.normal(0, 0.05)) * unit[0][ix] * unit[2][iz]
    cross = np.exp(cross)
    shared = _bias_tables(rng, shape, 0.08)

    images = {}
    for m in MODALITIES:
        # per-case jitter: +-8 % for healthy tissue, wider around 1 for the tumor (real tumors vary more)
        con = {key: v * rng.uniform(0.92, 1.08) if key in ("gm", "csf", "vessel") else
               1.0 + (v - 1.0) * rng.uniform(0.6, 1.4) for key, v in CONTRAST[m].items()}
        con["wm"] = 1.0
        level = WM_LEVEL[m] * math.exp(rng.uniform(math.log(0.5), math.log(2.5)))
        weights = [con["wm"], con["gm"], con["csf"], con["vessel"] * rng.uniform(0.5, 1.0)]
        values = np.asarray(weights, dtype=np.float32) @ tissue  # one pass over the (4, N) tissue maps
        sub = values[inbox]
        for name, key in (("edema", "ed"), ("core", "net"), ("nec", "nec"), ("enh", "enh")):
            sub += parts[name] * (np.float32(con[key]) * parts["texture"] - sub)
        values[inbox] = sub
        own = _bias_tables(rng, shape, 0.04)
        bias = [np.exp(a + b) for a, b in zip(shared, own)]
        bias[0] *= np.float32(level)  # the sequence's raw intensity scale rides along
        values *= cross
        values *= bias[0][ix]
        values *= bias[1][iy]
        values *= bias[2][iz]
        sigma_n = np.float32(level * rng.uniform(0.015, 0.045))
        values += sigma_n * rng.standard_normal(n_vox, dtype=np.float32)
        im = sigma_n * rng.standard_normal(n_vox, dtype=np.float32)
        values = np.hypot(values, im, out=values)  # Rician: magnitude of a complex Gaussian
        out = np.zeros(shape, np.int16)
        out.reshape(-1)[flat] = np.clip(np.rint(values), 1, 32767)
        images[m] = out

    regions = np.zeros((3, *shape), bool)
    sel = flat[inbox]
    for r, name in enumerate(("WT", "TC", "ET")):
        regions[r].reshape(-1)[sel[parts[name]]] = True
    info = {"seed": int(seed), "spacing": float(spacing), "tumor_centre": [int(c) for c in centre],
            "brain_voxels": int(n_vox),
            "voxels": {r: int(regions[i].sum()) for i, r in enumerate(("WT", "TC", "ET"))}}
    return SynthCase(images, regions, grid_affine(spacing), info)


# --------------------------------------------------------------------------- datasets

def _reference(affine: np.ndarray, shape: tuple[int, ...]) -> Image:
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_qform(affine, 1)
    header.set_sform(affine, 1)
    header.set_xyzt_units("mm", "sec")
    return Image(np.broadcast_to(np.zeros((), np.int16), shape), affine, header)


def case_ids(layout: str, n_cases: int, seed: int = 0) -> list[str]:
    """Case ids :func:`synthesize_dataset` writes for ``layout``: numbered by each case's seed
    (``seed + i``; MSD counts from 1), so a case id says how to make the case again."""
    fmt = LAYOUT_FILES[layout][0]
    return [fmt.format(seed + i + (layout == "msd")) for i in range(n_cases)]


def write_case(out: Path, case_id: str, case: SynthCase, layout: str) -> list[Path]:
    """Write one case in ``layout`` (atomic writes); returns the files."""
    _, pattern, tags = LAYOUT_FILES[layout]
    scheme = LAYOUT_SCHEMES[layout]
    ref = _reference(case.affine, next(iter(case.images.values())).shape)
    files = []
    if layout == "msd":
        stacked = np.stack([case.images[m] for m in MSD_CHANNEL_ORDER], axis=-1)
        files.append(write_image(out / pattern.format(case=case_id, tag=tags["image"]), stacked, ref))
    else:
        for m in MODALITIES:
            files.append(write_image(out / pattern.format(case=case_id, tag=tags[m]), case.images[m], ref))
    files.append(write_image(out / pattern.format(case=case_id, tag=tags["label"]),
                             case.labels(scheme).astype(np.uint8), ref))
    return files


def _one_thread() -> None:
    """Pool initializer: one torch thread per worker process (the workers are the parallelism)."""
    import torch

    torch.set_num_threads(1)


def _one(out: Path, layout: str, case_id: str, seed: int, spacing: float) -> tuple[str, float, float]:
    t0 = time.perf_counter()
    case = synthesize_case(seed, spacing)
    t1 = time.perf_counter()
    write_case(out, case_id, case, layout)
    return case_id, t1 - t0, time.perf_counter() - t1


def synthesize_dataset(out: str | Path, n_cases: int, layout: str = "brats2021", seed: int = 0,
                       spacing: float = 1.0, *, workers: int = 1, progress: bool = True) -> dict:
    """Write ``n_cases`` synthetic cases into ``out`` in ``layout`` (brats2021, brats2023, msd).

    Case ``i`` uses seed ``seed + i`` and is named by it (``BraTS2021_<seed+i>``), so any
    case is reproducible on its own and runs with other seeds add cases beside it. Labels are in
    the layout's scheme (brats2021: 1, 2, 4; brats2023: 1, 2, 3; msd: 1 edema, 2 non-enhancing,
    3 enhancing, with 4-D images and ``dataset.json``). ``workers`` > 1 runs cases in processes.
    Returns a summary dict (``cases``, ``template_seconds``, ``seconds_per_case`` generating and
    writing), also written as ``OUT/synth.json``.
    """
    from tqdm.auto import tqdm

    if layout not in LAYOUT_FILES:
        raise BratsSegError(f"unknown synthetic layout {layout!r}; valid: {', '.join(LAYOUT_FILES)}")
    if n_cases < 1:
        raise BratsSegError(f"--cases must be at least 1, got {n_cases}")
    get_scheme(LAYOUT_SCHEMES[layout])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = case_ids(layout, n_cases, seed)
    jobs = [(out, layout, cid, seed + i, float(spacing)) for i, cid in enumerate(ids)]
    t0 = time.perf_counter()
    if workers <= 1 or n_cases == 1:
        load_anatomy(float(spacing))  # once per process; timed apart from the cases
    template_s = time.perf_counter() - t0
    results = []
    with tqdm(total=n_cases, desc="synth", unit="case", disable=not progress) as bar:
        if workers <= 1 or n_cases == 1:
            for job in jobs:
                results.append(_one(*job))
                bar.update(1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
                for res in pool.map(_one, *zip(*jobs)):
                    results.append(res)
                    bar.update(1)
    if layout == "msd":
        listed = {c: {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ids}
        try:  # cases written earlier (other seeds) stay listed
            for entry in json.loads((out / "dataset.json").read_text()).get("training", []):
                listed.setdefault(Path(entry["image"]).name.split(".")[0], entry)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        training = [listed[c] for c in sorted(listed)]
        meta = dict(MSD_DATASET, numTraining=len(training), numTest=0, test=[], training=training)
        with atomic_path(out / "dataset.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    summary = {"layout": layout, "label_scheme": LAYOUT_SCHEMES[layout], "seed": seed, "spacing": float(spacing),
               "shape": list(grid_shape(spacing)), "cases": ids,
               "template_seconds": round(template_s, 3),
               "seconds_per_case": {"generate": float(np.mean([r[1] for r in results])),
                                    "write": float(np.mean([r[2] for r in results]))}}
    with atomic_path(out / "synth.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary
