"""Helpers for tests: tiny NIfTI volumes with affines, written into tmp folders."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def tiny_affine(spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = (-10.0, -12.0, 5.0)
    return aff


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), tiny_affine() if affine is None else affine), str(path))
    return path


def tiny_volumes(shape=(24, 24, 20), seed=0):
    """Four modality volumes (dict name -> float32 array) and a brats2021 label map.

    A brain-like ellipsoid of nonzero intensities with a tumor: edema (2) around a
    core (1) with an enhancing shell (4)."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    c = [(s - 1) / 2 for s in shape]
    r = sum(((idx[i] - c[i]) / (shape[i] * 0.45)) ** 2 for i in range(3))
    brain = r <= 1.0
    t = sum(((idx[i] - c[i] - 2) / 4.0) ** 2 for i in range(3))
    label = np.zeros(shape, np.uint8)
    label[(t <= 2.2) & brain] = 2
    label[t <= 1.0] = 4
    label[t <= 0.4] = 1
    vols = {}
    for k, name in enumerate(("t1", "t1ce", "t2", "flair")):
        v = (100 + 20 * k + 10 * rng.standard_normal(shape)).astype(np.float32)
        v += 40.0 * (label > 0) * (1 + k % 2)
        vols[name] = np.where(brain, v, 0).astype(np.float32)
    return vols, label
