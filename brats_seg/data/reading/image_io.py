"""Reading and writing volumes: nibabel for NIfTI, SimpleITK for .nrrd/.mha/.mhd (and JSON side files).

Geometry travels with every volume (:class:`Image`): a label map is written
with the affine, header and shape of its reference image, as uint8. Writes are
atomic (temporary file in the same folder, then rename), so a crash never
leaves a half-written output.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ...errors import CaseError
from ...files import atomic_path

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class Image:
    """A volume and its geometry.

    ``array``: ``(H, W, D)`` (or ``(H, W, D, C)`` for 4-D files), in the file's
    voxel order. ``affine``: 4x4 voxel -> RAS+ world (mm). ``header``: the
    nibabel header when read from NIfTI (kept so outputs match the input), else None.
    """

    array: np.ndarray
    affine: np.ndarray
    header: Any = None
    path: Path | None = None

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each array axis."""
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


def image_suffix(path: str | Path) -> str:
    """The recognised suffix of a volume file ('' if none)."""
    name = str(path).lower()
    for suffix in NIFTI_SUFFIXES + ITK_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def is_image_file(path: str | Path) -> bool:
    return image_suffix(path) != ""


def strip_suffix(path: str | Path) -> str:
    """File name without its volume suffix: ``a/b_t1.nii.gz`` -> ``b_t1``."""
    name = Path(path).name
    suffix = image_suffix(name)
    return name[: len(name) - len(suffix)] if suffix else name


def read_json_object(path: Path, advice: str = "") -> dict:
    """A JSON file holding an object; :class:`CaseError` naming it (then ``advice``) when unreadable or not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CaseError(f"{path}: unreadable JSON ({e.__class__.__name__}: {e}){advice}") from None
    if not isinstance(data, dict):
        raise CaseError(f"{path}: should hold a JSON object{advice}")
    return data


def _check_gzip_complete(path: Path) -> None:
    """Raise if a .gz file is truncated or corrupt.

    nibabel usually notices, but SimpleITK fills a truncated file with zeros
    without complaint; reading the stream once to its end catches both.
    """
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error) as e:
        raise CaseError(f"{path}: corrupt or truncated file ({e})") from None


def read_image(path: str | Path, *, dtype: Any = np.float32, mmap: bool = False) -> Image:
    """Read a volume. Raises :class:`CaseError` naming the file if it is missing,
    unreadable or truncated. ``dtype=None`` keeps the stored data type."""
    path = Path(path)
    if not path.is_file():
        raise CaseError(f"{path}: file not found")
    suffix = image_suffix(path)
    try:
        if suffix in NIFTI_SUFFIXES:
            img = nib.load(str(path), mmap=mmap)
            if dtype is None:
                array = np.asanyarray(img.dataobj)
            else:
                array = img.get_fdata(dtype=np.float32 if dtype == np.float32 else np.float64)
                array = array.astype(dtype, copy=False)
            return Image(np.asarray(array), np.asarray(img.affine, dtype=np.float64), img.header, path)
        if suffix in ITK_SUFFIXES:
            if suffix.endswith("gz"):
                _check_gzip_complete(path)
            return _read_itk(path, dtype)
    except CaseError:
        raise
    except Exception as e:  # nibabel/SimpleITK raise many types for bad files
        detail = str(e).splitlines()[0] if str(e) else "no detail"
        raise CaseError(f"{path}: unreadable ({e.__class__.__name__}: {detail})") from None
    raise CaseError(f"{path}: not a volume file (expected {', '.join(NIFTI_SUFFIXES + ITK_SUFFIXES)})")


LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""ITK geometry is in LPS, nibabel affines in RAS+: flip the first two axes (its own inverse)."""


def affine_from_itk(spacing: Any, direction: Any, origin: Any) -> np.ndarray:
    """4x4 voxel -> RAS+ affine from ITK's (LPS) ``spacing`` (3), ``direction`` (3x3, or 9 row-major)
    and ``origin`` (3). The one place (with :func:`itk_from_affine`) that converts."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing, dtype=np.float64)
    lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return LPS_FROM_RAS @ lps


def itk_from_affine(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """ITK's (LPS) ``(spacing, direction, origin)`` of a 4x4 voxel -> RAS+ affine (direction: 9
    row-major values, the affine's columns over their lengths; a shear is kept, not checked)."""
    lps = LPS_FROM_RAS @ np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    return (tuple(float(s) for s in spacing), tuple(float(x) for x in (lps[:3, :3] / spacing).ravel()),
            tuple(float(x) for x in lps[:3, 3]))


def _read_itk(path: Path, dtype: Any) -> Image:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(img)  # (D, H, W) in ITK's z, y, x order
    array = np.ascontiguousarray(np.transpose(array, tuple(range(array.ndim - 1, -1, -1))))
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(img.GetDimension(), -1)[:3, :3]
    affine = affine_from_itk(img.GetSpacing()[:3], direction, img.GetOrigin()[:3])
    return Image(array, affine, None, path)


def write_image(path: str | Path, array: np.ndarray, reference: Image, *, dtype: Any = None) -> Path:
    """Write ``array`` with the geometry of ``reference`` (affine, header, shape), atomically.

    Raises :class:`CaseError` if the shape differs from the reference's spatial shape.
    """
    path = Path(path)
    array = np.asarray(array if dtype is None else array.astype(dtype, copy=False))
    if tuple(array.shape[:3]) != tuple(reference.shape[:3]):
        raise CaseError(f"{path}: shape {array.shape} does not match reference {reference.shape[:3]}")
    suffix = image_suffix(path)
    with atomic_path(path) as tmp:
        if suffix in NIFTI_SUFFIXES or not suffix:
            header = reference.header.copy() if reference.header is not None else None
            img = nib.Nifti1Image(array, reference.affine, header)
            img.set_data_dtype(array.dtype)
            if header is not None:
                # keep qform/sform codes of the input; scaling would corrupt integer labels
                img.header.set_slope_inter(1.0, 0.0)
            nib.save(img, str(tmp))
        else:
            _write_itk(tmp, array, reference)
    return path


def _write_itk(path: Path, array: np.ndarray, reference: Image) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.transpose(array, tuple(range(array.ndim - 1, -1, -1))))
    spacing, direction, origin = itk_from_affine(reference.affine)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path), True)


def write_label(path: str | Path, labels: np.ndarray, reference: Image) -> Path:
    """Write a label map as uint8 with the reference image's geometry, atomically."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise CaseError(f"{path}: label values outside 0..255")
    return write_image(path, labels.astype(np.uint8), reference)


def n4_bias_correction(array: np.ndarray, mask: np.ndarray | None = None, *, shrink: int = 4,
                       iterations: int = 50) -> np.ndarray:
    """N4 bias-field correction (Tustison et al. 2010) with SimpleITK.

    ``array``: ``(H, W, D)``; ``mask``: brain mask of the same shape (default: nonzero).
    The field is estimated on a ``shrink``-times downsampled image and applied at
    full resolution. Returns float32, zero outside the mask.
    """
    import SimpleITK as sitk

    if mask is None:
        mask = array != 0
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    mask_img = sitk.GetImageFromArray(mask.astype(np.uint8))
    small = sitk.Shrink(image, [shrink] * 3)
    small_mask = sitk.Shrink(mask_img, [shrink] * 3)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([iterations] * 3)
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    corrected = sitk.GetArrayFromImage(image) / np.exp(sitk.GetArrayFromImage(log_field))
    return np.where(mask, corrected, 0).astype(np.float32)
