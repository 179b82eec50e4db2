"""Tiny DICOM series and volumes for the input tests (written with brats_seg.prepare.simulate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brats_seg.prepare.simulate import write_dicom_series


def head(shape=(32, 32, 12), seed=0) -> np.ndarray:
    """An ellipsoid 'head' with noise, int-valued float32 ``(X, Y, Z)``."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    c = [(s - 1) / 2 for s in shape]
    r = sum(((idx[i] - c[i]) / (shape[i] * 0.4)) ** 2 for i in range(3))
    return np.round(np.where(r <= 1, 300 + 20 * rng.standard_normal(shape), 5)).astype(np.float32)


def axial_affine(spacing=(1.0, 1.0, 3.0)) -> np.ndarray:
    """RAS affine of an LPS-ordered axial grid (like a scanner's)."""
    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    aff[:3, 3] = (20.0, 20.0, -10.0)
    return aff


def series(folder: Path, description: str, *, patient_id: str = "P1", shape=(32, 32, 12), image_type=None,
           positions=None, number: int = 1) -> Path:
    """Write one DICOM series; ``positions`` (mm, one per slice) overrides the even slice positions."""
    kwargs = {"image_type": image_type} if image_type else {}
    return write_dicom_series(folder, head(shape, number), axial_affine(), patient_id=patient_id,
                              description=description, series_number=number,
                              positions=None if positions is None else np.asarray(positions, float), **kwargs)
