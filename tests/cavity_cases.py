"""Real shared BraTS 2021 cases turned into BraTS 2024 GLI post-treatment cases with a known cavity (issue 20).

Each case is cropped around its tumor (``CROP`` voxels), its labels mapped to brats2024-gli (1 NETC, 2 SNFH,
3 ET) and a deterministic fluid-filled sphere (``RADIUS`` voxels) placed next to the tumor, inside the brain
and outside the tumor, labelled 4 (resection cavity). Fluid reads as cerebrospinal fluid does: dark on T1
and T1c, bright on T2, suppressed (dark) on FLAIR, at the case's own 1st / 99.5th brain percentiles.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SEQUENCES = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}
FLUID = {"t1n": 1, "t1c": 1, "t2w": 99.5, "t2f": 1}  # brain percentile of the fluid on each sequence
CROP = (64, 64, 48)
RADIUS = 10


def _box(label: np.ndarray) -> tuple[slice, ...]:
    idx = np.argwhere(label > 0)
    centre = (idx.min(0) + idx.max(0)) // 2
    lo = [int(min(max(c - s // 2, 0), n - s)) for c, s, n in zip(centre, CROP, label.shape)]
    return tuple(slice(l, l + s) for l, s in zip(lo, CROP))


def _cavity(label: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """The sphere: centred where a ball of ``RADIUS`` fits in the brain outside the tumor, nearest the tumor."""
    from scipy import ndimage

    tumor = label > 0
    room = ndimage.distance_transform_edt(brain & ~tumor)
    near = ndimage.distance_transform_edt(~tumor)
    fits = (room > RADIUS + 1) & (near <= RADIUS + 3)
    if not fits.any():
        fits = room >= room.max()
    score = np.where(fits, near, np.inf)
    centre = np.unravel_index(int(np.argmin(score)), label.shape)
    grid = np.indices(label.shape)
    ball = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= RADIUS**2
    return ball & brain & ~tumor


def write_cavity_case(source: Path, out: Path, index: int) -> tuple[str, np.ndarray]:
    """Write ``source`` (a brats2021 case folder) as ``BraTS-GLI-{index:05d}-100`` under ``out``; returns its id
    and label map (brats2024-gli)."""
    cid = f"BraTS-GLI-{index:05d}-100"
    seg = nib.load(str(source / f"{source.name}_seg.nii.gz"))
    raw = np.asanyarray(seg.dataobj).astype(np.uint8)
    box = _box(raw)
    images = {SEQUENCES[s]: np.asanyarray(nib.load(str(source / f"{source.name}_{s}.nii.gz")).dataobj)[box]
              .astype(np.float32) for s in SEQUENCES}
    label = np.choose(raw[box], [0, 1, 2, 0, 3]).astype(np.uint8)  # brats2021 1, 2, 4 -> NETC 1, SNFH 2, ET 3
    brain = images["t1n"] > 0
    cavity = _cavity(label, brain)
    label[cavity] = 4
    rng = np.random.default_rng(index)
    folder = out / cid
    folder.mkdir(parents=True)
    for name, image in images.items():
        level = np.percentile(image[brain], FLUID[name])
        image[cavity] = level * (1 + 0.03 * rng.standard_normal(int(cavity.sum())))
        nib.save(nib.Nifti1Image(image, seg.affine), str(folder / f"{cid}-{name}.nii.gz"))
    nib.save(nib.Nifti1Image(label, seg.affine), str(folder / f"{cid}-seg.nii.gz"))
    return cid, label


def cavity_dataset(shared: Path, out: Path, names: list[str], first: int = 1) -> dict[str, np.ndarray]:
    """Several of the shared brats2021 cases as cavity cases; case id -> label map."""
    return dict(write_cavity_case(shared / "brats2021" / n, out, first + i) for i, n in enumerate(names))
