"""Between our :class:`~brats_seg.data.reading.image_io.Image` (array + RAS affine) and SimpleITK images (LPS).

nibabel affines map voxel indices to RAS+ millimetres; ITK geometry (origin, spacing,
direction) is in LPS (:func:`~brats_seg.data.reading.image_io.affine_from_itk` and its inverse convert). An
``Image`` array is ``(X, Y, Z)`` in file voxel order; SimpleITK's arrays are ``(Z, Y, X)``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..data.reading.image_io import LPS_FROM_RAS, Image, affine_from_itk, itk_from_affine
from ..errors import CaseError

__all__ = ["LPS_FROM_RAS", "affine_of", "from_sitk", "to_sitk"]


def to_sitk(image: Image, *, name: str | None = None) -> sitk.Image:
    """A 3-D float32 SimpleITK image with the geometry of ``image``.

    Raises :class:`CaseError` naming the file when the array is not 3-D or the affine
    shears (ITK directions must be orthonormal)."""
    label = name or str(image.path or "image")
    if image.array.ndim != 3:
        raise CaseError(f"{label}: expected a 3-D volume, got shape {'x'.join(map(str, image.shape))}")
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or np.any(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)) <= 0):
        raise CaseError(f"{label}: affine has zero or non-finite voxel size")
    spacing, direction, origin = itk_from_affine(affine)
    d = np.reshape(direction, (3, 3))
    if np.abs(d.T @ d - np.eye(3)).max() > 1e-3:
        raise CaseError(f"{label}: affine shears the voxel grid (non-orthogonal axes); resample it first")
    out = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(image.array, (2, 1, 0)), dtype=np.float32))
    out.SetSpacing(spacing)
    out.SetDirection(direction)
    out.SetOrigin(origin)
    return out


def affine_of(image: sitk.Image) -> np.ndarray:
    """4x4 voxel -> RAS+ affine of a 3-D SimpleITK image."""
    return affine_from_itk(image.GetSpacing(), image.GetDirection(), image.GetOrigin())


def from_sitk(image: sitk.Image, path=None) -> Image:
    """An ``Image`` ``(X, Y, Z)`` with the geometry of a 3-D SimpleITK image."""
    array = np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)))
    return Image(array, affine_of(image), None, path)
