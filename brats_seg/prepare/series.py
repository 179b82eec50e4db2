"""Reading one sequence as the scanner gave it: a DICOM series folder or a NIfTI/NRRD/MHA file.

DICOM series are found and checked from their headers (:mod:`.dicom_index`: any file names,
nested folders, DICOMDIR, classic or Enhanced multi-frame; refusals in one line naming the
series), then read with SimpleITK's GDCM reader (every common transfer syntax: implicit/explicit
little endian, big endian, deflate, RLE, JPEG, JPEG-LS, JPEG 2000; rescale slope/intercept
applied), and the volume's geometry is checked against the headers once more.
Files go through :func:`brats_seg.data.reading.image_io.read_image` (which notices truncated files);
a volume with fewer than :data:`MIN_SLICES` slices along an axis is refused as 2-D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..data.reading.image_io import Image, image_suffix, is_image_file, read_image
from ..errors import CaseError
from .dicom_index import MIN_SLICES, DicomSeries, find_series, slice_order
from .sitk_images import from_sitk


@dataclass
class Series:
    """One sequence as given: the native ``image`` (array ``(X, Y, Z)``, RAS affine, the NIfTI
    header when it came from NIfTI), where it came from and, for DICOM, its files and tags."""

    source: Path
    kind: str
    """``dicom`` or the file suffix (``.nii.gz``, ``.nrrd``, ...)."""
    image: Image
    files: tuple[Path, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``AX FLAIR (series 5, 208x256x26, 0.90x0.90x5.50 mm)`` or the file name with shape and spacing."""
        geometry = f"{'x'.join(map(str, self.image.shape))}, {'x'.join(f'{s:.2f}' for s in self.image.spacing)} mm"
        if self.kind == "dicom":
            what = self.tags.get("series_description") or "no description"
            return f"{what} (series {self.tags.get('series_number', '?')}, {geometry})"
        return f"{self.source.name} ({geometry})"


def _check_shape(label: str, shape: Sequence[int]) -> None:
    if len(shape) != 3:
        raise CaseError(f"{label}: expected a 3-D volume, got shape {'x'.join(map(str, shape))}")
    if min(shape) < MIN_SLICES:
        raise CaseError(f"{label}: a 2-D image ({'x'.join(map(str, shape))} voxels); a 3-D volume is needed")


def read_file(path: Path) -> Series:
    """A NIfTI/NRRD/MHA volume (a trailing 4th axis of length 1 is dropped)."""
    image = read_image(path)
    if image.array.ndim == 4 and image.array.shape[3] == 1:
        image = Image(image.array[..., 0], image.affine, image.header, path)
    _check_shape(str(path), image.shape)
    return Series(path, image_suffix(path), image)


# --------------------------------------------------------------------------- DICOM

GEOMETRY_TOLERANCE_MM = 1e-3
"""The volume read must agree with the headers' geometry (origin, slice step and axis) to this."""


def _check_geometry(series: DicomSeries, image: sitk.Image, order: np.ndarray) -> None:
    """Refuse a volume whose geometry the reader made differently from the headers (never silently)."""
    positions = np.asarray(series.positions)[order]
    normal = np.cross(series.orientations[0][:3], series.orientations[0][3:])
    step = float(np.median(np.diff(positions @ normal)))
    if series.multiframe and order[0] != 0:
        step = -step  # frames stored from the highest position down
        positions = positions[::-1]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    z_axis = direction[:, 2] * image.GetSpacing()[2]
    off = max(np.abs(np.asarray(image.GetOrigin()) - positions[0]).max(), np.abs(z_axis - normal * step).max())
    if image.GetSize()[2] != len(order) or off > GEOMETRY_TOLERANCE_MM:
        raise CaseError(f"{series.label()}: the reader's geometry differs from the headers by {off:.3f} mm;"
                        " not read (a frame order or spacing the reader does not follow)")


def read_dicom(series: DicomSeries) -> Series:
    """The volume of one checked series (see :func:`~.dicom_index.slice_order`)."""
    order = slice_order(series)
    try:
        if series.multiframe:
            image = sitk.ReadImage(str(series.files[0]))
        else:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames([str(series.files[i]) for i in order])
            image = reader.Execute()
    except RuntimeError as e:
        raise CaseError(f"{series.label()}: unreadable DICOM pixel data ({str(e).strip().splitlines()[-1]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise CaseError(f"{series.label()}: not a 3-D single-channel volume")
    _check_geometry(series, image, order)
    _check_shape(series.label(), image.GetSize())
    files = tuple(series.files) if series.multiframe else tuple(series.files[i] for i in order)
    source = series.files[0].parent
    return Series(source, "dicom", from_sitk(sitk.Cast(image, sitk.sitkFloat32), source), files, dict(series.tags))


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Series:
    """The DICOM series below ``folder`` (any depth; ``series_uid`` picks one when it holds several)."""
    folder = Path(folder)
    found = find_series(folder)
    if not found:
        raise CaseError(f"{folder}: no DICOM image series found (in it or below it)")
    if series_uid is not None:
        found = [s for s in found if s.uid == series_uid]
    if len(found) > 1:
        listed = "; ".join(s.label().rsplit(" in ", 1)[0] for s in found)
        raise CaseError(f"{folder}: holds {len(found)} DICOM series ({listed}); give one series folder, or the study"
                        " folder as INPUT to recognise the sequences from their descriptions")
    return read_dicom(found[0])


def read_series(path: str | Path) -> Series:
    """A sequence from a DICOM series folder or a volume file; one-line :class:`CaseError` otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        return read_dicom_series(path)
    if not path.exists():
        raise CaseError(f"{path}: no such file or folder")
    if not is_image_file(path):
        raise CaseError(f"{path}: not a volume file or DICOM folder (expected .nii.gz, .nii, .nrrd, .mha,"
                        " .mhd or a folder of DICOM files)")
    return read_file(path)
