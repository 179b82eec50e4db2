"""Reading one sequence as the scanner gave it: a DICOM series folder or a NIfTI/NRRD/MHA file.

DICOM series are read with SimpleITK's series reader (GDCM), after checks that refuse,
each with one line naming the folder: a localizer (ImageType LOCALIZER, or slices in
several orientations), a 2-D single slice, uneven slice spacing (a gap or a repeated
position: more than 1 % or 0.05 mm off the median step), and slices of several patients.
Files go through :func:`brats_seg.data.io.read_image` (which notices truncated files);
a volume with fewer than :data:`MIN_SLICES` slices along an axis is refused as 2-D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..data.io import Image, image_suffix, is_image_file, read_image
from ..errors import CaseError
from .geometry import from_sitk

MIN_SLICES = 4
"""Fewer voxels than this along an axis: a 2-D image (or a localizer), refused."""

SPACING_TOLERANCE = (0.01, 0.05)
"""Slice steps may differ from their median by 1 % or 0.05 mm, whichever is larger."""

TAGS = {
    "patient_id": "0010|0020", "patient_name": "0010|0010", "study_uid": "0020|000d", "series_uid": "0020|000e",
    "series_description": "0008|103e", "protocol_name": "0018|1030", "series_number": "0020|0011",
    "image_type": "0008|0008", "modality": "0008|0060", "contrast_agent": "0018|0010",
    "frame_of_reference_uid": "0020|0052", "pixel_spacing": "0028|0030", "slice_thickness": "0018|0050",
}
"""DICOM tags (group|element, as GDCM names them) kept for each series."""


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

def series_ids(folder: Path) -> list[str]:
    """DICOM series instance UIDs found in ``folder`` (not below it)."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def slice_tags(path: str) -> dict[str, str]:
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    keys = set(reader.GetMetaDataKeys())
    out = {name: reader.GetMetaData(tag).strip() for name, tag in TAGS.items() if tag in keys}
    for name, tag in (("position", "0020|0032"), ("orientation", "0020|0037"), ("frames", "0028|0008")):
        if tag in keys:
            out[name] = reader.GetMetaData(tag).strip()
    return out


def _numbers(text: str, n: int) -> np.ndarray | None:
    try:
        values = np.asarray([float(v) for v in text.split("\\")], dtype=np.float64)
    except ValueError:
        return None
    return values if values.size == n else None


def _check_slices(folder: Path, slices: list[dict[str, str]]) -> None:
    """Refuse localizers, mixed patients or orientations, and uneven spacing."""
    first = slices[0]
    kinds = {s.get("image_type", "").upper() for s in slices}
    if any("LOCALIZER" in k for k in kinds):
        raise CaseError(f"{folder}: a localizer series (ImageType LOCALIZER), not a diagnostic sequence")
    patients = sorted({s.get("patient_id", "") for s in slices})
    if len(patients) > 1:
        raise CaseError(f"{folder}: slices of several patients ({', '.join(patients)}) in one series")
    orientations = [_numbers(s.get("orientation", ""), 6) for s in slices]
    if any(o is None for o in orientations) or any(np.abs(o - orientations[0]).max() > 1e-3 for o in orientations):
        raise CaseError(f"{folder}: slices in several orientations (a localizer?) or without orientation tags")
    positions = [_numbers(s.get("position", ""), 3) for s in slices]
    if any(p is None for p in positions):
        raise CaseError(f"{folder}: slices without ImagePositionPatient")
    if len(slices) == 1:
        if int(first.get("frames", "1") or 1) < MIN_SLICES:
            raise CaseError(f"{folder}: a 2-D single slice; a 3-D series is needed")
        return
    row, col = orientations[0][:3], orientations[0][3:]
    depth = np.sort(np.asarray(positions) @ np.cross(row, col))
    steps = np.diff(depth)
    median = float(np.median(steps))
    tol = max(SPACING_TOLERANCE[0] * median, SPACING_TOLERANCE[1])
    if median <= 0 or np.abs(steps - median).max() > tol:
        raise CaseError(f"{folder}: uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm between"
                        f" slices; a gap or repeated slice?)")
    if len(slices) < MIN_SLICES:
        raise CaseError(f"{folder}: only {len(slices)} slices; a 3-D series is needed")


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Series:
    """The DICOM series in ``folder`` (``series_uid`` picks one when the folder holds several)."""
    folder = Path(folder)
    uids = series_ids(folder)
    if not uids:
        raise CaseError(f"{folder}: no DICOM series found")
    if series_uid is None:
        if len(uids) > 1:
            raise CaseError(f"{folder}: holds {len(uids)} DICOM series; give one series folder, or the study"
                            " folder as INPUT to recognise the sequences from their descriptions")
        series_uid = uids[0]
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid))
    slices = [slice_tags(f) for f in files]
    _check_slices(folder, slices)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as e:
        raise CaseError(f"{folder}: unreadable DICOM series ({str(e).splitlines()[-1].strip()})") from None
    if image.GetDimension() != 3:
        raise CaseError(f"{folder}: a {image.GetDimension()}-D DICOM image; a 3-D series is needed")
    _check_shape(str(folder), image.GetSize())
    tags = {k: v for k, v in slices[0].items() if k in TAGS}
    return Series(folder, "dicom", from_sitk(sitk.Cast(image, sitk.sitkFloat32), folder),
                  tuple(Path(f) for f in files), tags)


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


def dicom_folders(root: Path) -> list[tuple[Path, str]]:
    """Every (folder, series UID) under ``root``, depth first, sorted."""
    found = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir() and not p.name.startswith("."))]):
        found.extend((folder, uid) for uid in series_ids(folder))
    return found
