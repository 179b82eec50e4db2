"""The anatomy of synthetic cases: the MNI ICBM152 2009a template's tissue maps, as nilearn ships them.

The template (Fonov et al., NeuroImage 2011) sits *inside nilearn's wheel*
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``,
197x233x189 at 1 mm): real human anatomy at the resolution BraTS uses, with grey/white-matter
probability maps from which each sequence's contrast can be derived, installed with a declared
dependency (nothing is downloaded at run time) and freely redistributable. It is one averaged
brain (smoother than a single subject). CSF is what lies inside the (closed, hole-filled)
brain but is neither GM nor WM: the sulci and ventricles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import BratsSegError

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

TISSUES = ("wm", "gm", "csf", "vessel")
"""Channels of the anatomy maps: tissue probabilities plus a vessel map (bright on T1-Gd)."""


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


