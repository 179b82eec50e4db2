"""Labels on a DICOM series' grid -> a DICOM Segmentation object (highdicom, binary segments).

Segments 1..n: one per tumour label of the scheme, in its order (e.g. brats2021: 1 NCR/NET,
2 edema, 4 enhancing); then one per group the scheme scores that joins several labels (WT, TC;
segments may overlap, as binary SEG allows). Each is coded (category "Morphologically abnormal
structure", SCT 49755003; type by :data:`TYPE_WORDS`: necrosis, edema, cyst, else neoplasm,
SCT 108369006) and labelled with the group's or label's name. Frames follow the source's slices
(the order the series was read in; an Enhanced object: its frames), so a viewer shows them over it.

A source a SEG cannot reference (no Frame of Reference UID, differing frames of reference, an
image type highdicom refuses) raises :class:`DicomSegError` in one line: the NIfTI labels stand,
and ``brats-seg segment`` says why no SEG was written (exit status 3). Generating a frame of
reference for the SEG was not done: a viewer would not place it over the source images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..conventions import get_scheme
from ..errors import BratsSegError
from ..files import atomic_path


class DicomSegError(BratsSegError):
    """No DICOM SEG could be written over this source (one line; the NIfTI labels stand)."""


TYPE_WORDS = (("necro", "Necrosis"), ("edema", "Edema"), ("hyperintensity", "Edema"), ("cyst", "Cyst"))
"""Words of a label's name -> the SCT segmented property type (pydicom's code dictionary); the rest is Neoplasm."""


TYPE_2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "StudyID", "AccessionNumber")
"""Patient and study elements of type 2 (may be empty, not absent) that the SEG copies from its source."""


def segment_plan(scheme: str) -> list[tuple[str, frozenset[int], str]]:
    """``(segment label, label values, SCT type keyword)`` per segment, numbered from 1 in this order."""
    s = get_scheme(scheme)
    values = [v for v in sorted(s.labels) if v != 0]
    plan = []
    for v in values:
        name = str(s.labels[v])
        kind = next((code for word, code in TYPE_WORDS if word in name.lower()), "Neoplasm")
        plan.append((name[:64], frozenset({v}), kind))
    for group in s.scored:
        members = frozenset(s.groups[group])
        if len(members) > 1:
            plan.append((group, members, "Neoplasm"))
    return plan


def _sources(path, source_files: Sequence[Path], n_slices: int) -> list:
    import pydicom

    sources = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in source_files]
    for ds in sources:  # type-2 elements the SEG copies: present but empty (unknown) where an export dropped them
        for keyword in TYPE_2_COPIED:
            if keyword not in ds:
                setattr(ds, keyword, None)
    frames = sum(int(s.get("NumberOfFrames", 1) or 1) for s in sources)
    if frames != n_slices:
        raise DicomSegError(f"{path}: labels have {n_slices} slices, the source series {frames} frames; no DICOM SEG")
    uids = {str(s.get("FrameOfReferenceUID", "")) for s in sources}
    if "" in uids:
        raise DicomSegError(f"{path}: the source series has no Frame of Reference UID (0020,0052), which a DICOM SEG"
                            " must reference; no DICOM SEG written (the NIfTI labels stand)")
    if len(uids) > 1:
        raise DicomSegError(f"{path}: the source slices have {len(uids)} Frames of Reference; no DICOM SEG written")
    return sources


def write_dicom_seg(path: str | Path, labels: np.ndarray, source_files: Sequence[Path], scheme: str,
                    *, series_description: str = "brats_seg tumour segmentation") -> Path:
    """Write ``labels`` ``(X, Y, Z)`` (on the grid of the series ``source_files``, slice k = file k,
    or frame k of one Enhanced object) as a DICOM SEG; returns the path. :class:`DicomSegError`
    (one line) when the source cannot carry one."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    sources = _sources(path, source_files, labels.shape[2])
    plan = segment_plan(scheme)
    stack = np.transpose(labels, (2, 1, 0))  # (slices, rows, columns)
    frames = np.stack([np.isin(stack, sorted(values)) for _, values, _ in plan], axis=-1).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(name="brats_seg", version=__version__,
                                                   family=codes.DCM.ArtificialIntelligence)
    segments = [hd.seg.SegmentDescription(segment_number=n, segment_label=label,
                                          segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                                          segmented_property_type=getattr(codes.SCT, kind),
                                          algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                          algorithm_identification=algorithm)
                for n, (label, _, kind) in enumerate(plan, start=1)]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="brats_seg",
            manufacturer_model_name="brats_seg", software_versions=__version__, device_serial_number="none",
            series_description=series_description, omit_empty_frames=False)
    except (ValueError, TypeError, AttributeError, KeyError, NotImplementedError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DicomSegError(f"{path}: highdicom refused the source series ({reason}); no DICOM SEG written") from None
    with atomic_path(path) as tmp:
        seg.save_as(str(tmp))
    return Path(path)
