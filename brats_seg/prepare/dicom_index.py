"""DICOM series below a folder, found and checked from their headers (pydicom, no pixels read).

Every file below the folder counts, whatever its name or depth; files that are not DICOM, DICOMDIR
indexes and objects without an image (no ``Rows``: reports, presentation states) are skipped. Files
are grouped by Series Instance UID. A series is classic (one slice per file, any order) or one
Enhanced (multi-frame) object whose frames carry their own position (functional groups).

:func:`slice_order` refuses, in one line naming the series, what would give a wrong volume:
a localizer, slices of several patients, several orientations, a 4-D series (several volumes at
the same positions: diffusion, perfusion), uneven slice spacing (a gap or repeated slice), a gantry
tilt (slices not stacked along their normal; not corrected), a 2-D series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CaseError

MIN_SLICES = 4
"""Fewer voxels than this along an axis: a 2-D image (or a localizer), refused."""

SPACING_TOLERANCE = (0.01, 0.05)
"""Slice steps may differ from their median by 1 % or 0.05 mm, whichever is larger; the same bounds
the drift of slice positions off the slice normal (a gantry tilt)."""

HEADER = {
    "patient_id": "PatientID", "patient_name": "PatientName", "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID", "series_description": "SeriesDescription", "protocol_name": "ProtocolName",
    "series_number": "SeriesNumber", "image_type": "ImageType", "modality": "Modality",
    "contrast_agent": "ContrastBolusAgent", "frame_of_reference_uid": "FrameOfReferenceUID",
    "pixel_spacing": "PixelSpacing", "slice_thickness": "SliceThickness",
}
"""Header elements kept for each series (multi-valued ones joined with ``\\``)."""


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _vector(value, n: int) -> np.ndarray | None:
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.size == n else None


def _frame_geometry(ds) -> tuple[list, list, dict[str, str]]:
    """Per-frame positions and orientations of an Enhanced object, and its pixel measures."""
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    frames = ds.get("PerFrameFunctionalGroupsSequence", [])
    positions, orientations, measures = [], [], {}

    def first(group, keyword):
        seq = group.get(keyword) if group is not None else None
        return seq[0] if seq else None

    for frame in frames:
        pos = first(frame, "PlanePositionSequence")
        ori = first(frame, "PlaneOrientationSequence") or first(shared, "PlaneOrientationSequence")
        positions.append(_vector(pos.get("ImagePositionPatient") if pos else None, 3))
        orientations.append(_vector(ori.get("ImageOrientationPatient") if ori else None, 6))
    pixel = first(shared, "PixelMeasuresSequence") or (first(frames[0], "PixelMeasuresSequence") if frames else None)
    if pixel is not None:
        measures = {"pixel_spacing": _text(pixel.get("PixelSpacing")),
                    "slice_thickness": _text(pixel.get("SliceThickness"))}
    return positions, orientations, measures


@dataclass
class DicomSeries:
    """One series as its headers describe it: ``files`` (a classic series: one slice each; an
    Enhanced object: one file), ``tags`` (:data:`HEADER`), per slice (or frame) ``positions``
    and ``orientations`` (None where missing), and each file's ImageType and patient."""

    uid: str
    files: list[Path]
    tags: dict[str, str]
    positions: list = field(default_factory=list)
    orientations: list = field(default_factory=list)
    image_types: set[str] = field(default_factory=set)
    patients: set[str] = field(default_factory=set)
    multiframe: bool = False

    def label(self) -> str:
        """``series 5 'AX T1 POST GD' in FOLDER``: how every refusal names it."""
        folder = self.files[0].parent
        return f"series {self.tags.get('series_number') or '?'} " \
               f"'{self.tags.get('series_description') or 'no description'}' in {folder}"


def _series(uid: str, items: list) -> DicomSeries:
    ds0 = items[0][1]
    tags = {name: _text(ds0.get(keyword)) for name, keyword in HEADER.items() if keyword in ds0}
    out = DicomSeries(uid, [p for p, _ in items], tags)
    out.image_types = {_text(ds.get("ImageType")).upper() for _, ds in items}
    out.patients = {_text(ds.get("PatientID")) for _, ds in items}
    if len(items) == 1 and int(ds0.get("NumberOfFrames", 1) or 1) > 1:
        out.multiframe = True
        out.positions, out.orientations, measures = _frame_geometry(ds0)
        tags.update({k: v for k, v in measures.items() if v})
        return out
    out.positions = [_vector(ds.get("ImagePositionPatient"), 3) for _, ds in items]
    out.orientations = [_vector(ds.get("ImageOrientationPatient"), 6) for _, ds in items]
    return out


def find_series(root: str | Path) -> list[DicomSeries]:
    """Every DICOM image series below ``root`` (any depth, any file names), by series number."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    root = Path(root)
    groups: dict[str, list] = {}
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue  # not DICOM
        except Exception as e:  # noqa: BLE001 - a damaged file of any kind: one line naming it
            raise CaseError(f"{path}: unreadable DICOM file ({type(e).__name__}: {e})") from None
        if "SeriesInstanceUID" not in ds or "Rows" not in ds:
            continue  # DICOMDIR, structured reports, presentation states: no image
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    found = [_series(uid, items) for uid, items in groups.items()]

    def number(s: DicomSeries) -> tuple:
        text = s.tags.get("series_number", "")
        return (int(text) if text.lstrip("-").isdigit() else 1 << 30, s.uid)

    return sorted(found, key=number)


def _refuse(series: DicomSeries, why: str) -> CaseError:
    return CaseError(f"{series.label()}: {why}")


def _check_kind(series: DicomSeries) -> None:
    if any("LOCALIZER" in k for k in series.image_types):
        raise _refuse(series, "a localizer series (ImageType LOCALIZER), not a diagnostic sequence")
    if len(series.patients) > 1:
        raise _refuse(series, f"slices of several patients ({', '.join(sorted(series.patients))}) in one series")
    if not series.multiframe and len(series.files) == 1:
        raise _refuse(series, "a 2-D single slice; a 3-D series is needed")
    if any(o is None for o in series.orientations) or not series.orientations:
        raise _refuse(series, "slices without orientation tags (ImageOrientationPatient)")
    if any(np.abs(o - series.orientations[0]).max() > 1e-3 for o in series.orientations):
        raise _refuse(series, "slices in several orientations (a 3-plane localizer?)")
    if any(p is None for p in series.positions):
        raise _refuse(series, "slices without ImagePositionPatient")


def _check_4d(series: DicomSeries, depth: np.ndarray) -> None:
    levels, counts = np.unique(np.round(depth, 2), return_counts=True)
    if counts.max() == 1:
        return
    if counts.min() == counts.max():
        raise _refuse(series, f"a 4-D series ({counts[0]} volumes of {levels.size} slices: diffusion, perfusion or"
                              " dynamic); a 3-D series is needed")
    raise _refuse(series, f"uneven slice spacing ({counts.max()} slices at one position; a repeated slice?)")


def slice_order(series: DicomSeries) -> np.ndarray:
    """Indices of the slices (files, or frames of an Enhanced object) from the lowest to the highest
    position along the slice normal; :class:`CaseError` naming the series for a volume it cannot be."""
    _check_kind(series)
    row, col = series.orientations[0][:3], series.orientations[0][3:]
    normal = np.cross(row, col)
    positions = np.asarray(series.positions)
    depth = positions @ normal
    _check_4d(series, depth)
    order = np.argsort(depth, kind="stable")
    if series.multiframe and not (np.array_equal(order, np.arange(depth.size)) or np.array_equal(
            order, np.arange(depth.size)[::-1])):
        raise _refuse(series, "frames not stored in slice order")
    steps = np.diff(depth[order])
    median = float(np.median(steps))
    tol = max(SPACING_TOLERANCE[0] * median, SPACING_TOLERANCE[1])
    if np.abs(steps - median).max() > tol:
        raise _refuse(series, f"uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm between slices;"
                              " a gap or repeated slice?)")
    along = positions[order] - positions[order[0]]
    drift = along - np.outer(along @ normal, normal)
    if np.linalg.norm(drift, axis=1).max() > tol:
        shift = float(np.linalg.norm(drift[-1])) / max(float(along[-1] @ normal), 1e-9)
        raise _refuse(series, f"slices not stacked along their normal (gantry tilt {np.degrees(np.arctan(shift)):.1f}"
                              " degrees?); tilted series are not corrected")
    if depth.size < MIN_SLICES:
        raise _refuse(series, f"only {depth.size} slices; a 3-D series is needed")
    return order
