"""Between our :class:`~brats_seg.data.io.Image` (array + RAS affine) and SimpleITK images (LPS).

nibabel affines map voxel indices to RAS+ millimetres; ITK geometry (origin, spacing,
direction) is in LPS. An ``Image`` array is ``(X, Y, Z)`` in file voxel order; SimpleITK's
arrays are ``(Z, Y, X)``. These two functions are the only places that convert.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..data.io import Image
from ..errors import CaseError

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_sitk(image: Image, *, name: str | None = None) -> sitk.Image:
    """A 3-D float32 SimpleITK image with the geometry of ``image``.

    Raises :class:`CaseError` naming the file when the array is not 3-D or the affine
    shears (ITK directions must be orthonormal)."""
    label = name or str(image.path or "image")
    if image.array.ndim != 3:
        raise CaseError(f"{label}: expected a 3-D volume, got shape {'x'.join(map(str, image.shape))}")
    lps = LPS_FROM_RAS @ np.asarray(image.affine, dtype=np.float64)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    if np.any(spacing <= 0) or not np.all(np.isfinite(lps)):
        raise CaseError(f"{label}: affine has zero or non-finite voxel size")
    direction = lps[:3, :3] / spacing
    if np.abs(direction.T @ direction - np.eye(3)).max() > 1e-3:
        raise CaseError(f"{label}: affine shears the voxel grid (non-orthogonal axes); resample it first")
    out = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(image.array, (2, 1, 0)), dtype=np.float32))
    out.SetSpacing([float(s) for s in spacing])
    out.SetDirection([float(x) for x in direction.ravel()])
    out.SetOrigin([float(x) for x in lps[:3, 3]])
    return out


def affine_of(image: sitk.Image) -> np.ndarray:
    """4x4 voxel -> RAS+ affine of a 3-D SimpleITK image."""
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = image.GetOrigin()
    return LPS_FROM_RAS @ lps


def from_sitk(image: sitk.Image, path=None) -> Image:
    """An ``Image`` ``(X, Y, Z)`` with the geometry of a 3-D SimpleITK image."""
    array = np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)))
    return Image(array, affine_of(image), None, path)
