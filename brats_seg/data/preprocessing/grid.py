"""Grid geometry of preprocessing: the brain's bounding box, resampling, affines, and :func:`restore`,
which puts a prediction on the preprocessed grid back onto the original one exactly.

``properties`` (JSON-able, written by :mod:`brats_seg.data.preprocessing.preprocess`) carry what is needed:
``original_shape``, ``affine`` (4x4 of the original grid), ``bbox`` ``[[lo, hi]]x3`` (hi
exclusive, original voxels), ``cropped_shape`` and ``shape`` (final).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import BratsSegError, CaseError


def foreground_bbox(image: np.ndarray, label: np.ndarray | None = None, margin: int = 0) -> list[list[int]]:
    """Bounding box ``[[lo, hi], x3]`` (hi exclusive) of voxels nonzero in any channel of
    ``image`` ``(C, H, W, D)`` or in ``label`` ``(H, W, D)``, grown by ``margin`` voxels
    and clipped to the grid. Raises :class:`CaseError` if everything is zero."""
    mask = np.any(image != 0, axis=0)
    if label is not None:
        mask |= label != 0
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=others))
        if hits.size == 0:
            raise CaseError("all channels are zero; nothing to crop to")
        lo = max(0, int(hits[0]) - margin)
        hi = min(mask.shape[axis], int(hits[-1]) + 1 + margin)
        box.append([lo, hi])
    return box


def box_slices(bbox: Sequence[Sequence[int]]) -> tuple[slice, ...]:
    """``[[lo, hi]]x3`` -> the three slices that cut that box out of a volume."""
    return tuple(slice(int(lo), int(hi)) for lo, hi in bbox)


def resample(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resample the last three axes of ``array`` ``(..., h, w, d)`` to ``shape`` exactly.

    Grid-aligned (``grid_mode=True``): voxel edges of input and output coincide, so a
    resampled volume covers the same physical extent. ``order`` 0 (nearest, labels),
    1 (linear, probabilities) or 3 (cubic spline, images). Keeps the dtype.
    """
    from scipy import ndimage

    shape = tuple(int(s) for s in shape)
    if tuple(array.shape[-3:]) == shape:
        return array
    factors = np.asarray(shape, dtype=np.float64) / np.asarray(array.shape[-3:], dtype=np.float64)
    flat = array.reshape((-1, *array.shape[-3:]))
    out = np.empty((flat.shape[0], *shape), dtype=array.dtype)
    for i, vol in enumerate(flat):
        res = ndimage.zoom(vol, factors, order=order, mode="nearest", grid_mode=True, prefilter=order > 1)
        if res.shape != shape:  # zoom rounds the output size; guard against an off-by-one
            raise BratsSegError(f"resampling produced shape {res.shape}, expected {shape}")
        out[i] = res
    return out.reshape((*array.shape[:-3], *shape))


def preprocessed_affine(properties: dict[str, Any]) -> np.ndarray:
    """4x4 voxel -> world affine of the preprocessed grid ``(h, w, d)``: the original affine
    shifted to the crop box and scaled by the resampling (voxel edges aligned)."""
    affine = np.asarray(properties["affine"], dtype=np.float64)
    lo = np.array([b[0] for b in properties["bbox"]], dtype=np.float64)
    f = np.asarray(properties["cropped_shape"], dtype=np.float64) / np.asarray(properties["shape"], dtype=np.float64)
    vox = np.eye(4)
    vox[:3, :3] = np.diag(f)
    vox[:3, 3] = lo + (f - 1) / 2  # new voxel i has its centre at old voxel lo + (i + 0.5) f - 0.5
    return affine @ vox


def target_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    """Grid size that covers the same extent at ``new_spacing`` (rounded, at least 1)."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))


def restore(array: np.ndarray, properties: dict[str, Any], order: int = 0) -> np.ndarray:
    """Put ``array`` ``(..., h, w, d)`` (a prediction on the preprocessed grid) back into
    the original ``(..., H, W, D)`` grid: resample to the cropped shape (``order`` 0 for
    labels, 1 for probabilities), then zero-pad into the crop box. Keeps the dtype."""
    array = np.asarray(array)
    shape = tuple(properties["shape"])
    if tuple(array.shape[-3:]) != shape:
        raise BratsSegError(
            f"case {properties.get('case_id')}: array of shape {array.shape} does not end in the"
            f" preprocessed shape {shape}"
        )
    array = resample(array, properties["cropped_shape"], order)
    out = np.zeros((*array.shape[:-3], *properties["original_shape"]), dtype=array.dtype)
    out[(Ellipsis, *box_slices(properties["bbox"]))] = array
    return out
