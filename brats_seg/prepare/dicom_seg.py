"""Labels on a DICOM series' grid -> a DICOM Segmentation object (highdicom, binary segments).

One segment per tumour label of the scheme (e.g. brats2021: 1 NCR/NET, 2 edema, 4 enhancing),
numbered 1..n in the scheme's order; frames follow the source series' slices (the order
SimpleITK's series reader stacked them in), so a viewer shows them over that series.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..conventions import get_scheme
from ..errors import BratsSegError
from ..files import atomic_path


def write_dicom_seg(path: str | Path, labels: np.ndarray, source_files: Sequence[Path], scheme: str,
                    *, series_description: str = "brats_seg tumour segmentation") -> Path:
    """Write ``labels`` ``(X, Y, Z)`` (on the grid of the series ``source_files``, slice k =
    file k) as a DICOM SEG; returns the path."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from .. import __version__

    sources = [pydicom.dcmread(str(f)) for f in source_files]
    if labels.shape[2] != len(sources):
        raise BratsSegError(f"{path}: labels have {labels.shape[2]} slices, the series {len(sources)} files")
    s = get_scheme(scheme)
    values = [v for v in sorted(s.labels) if v != 0]
    frames = np.zeros((len(sources), labels.shape[1], labels.shape[0]), np.uint8)  # (slices, rows, columns)
    for number, value in enumerate(values, start=1):
        frames[np.transpose(labels, (2, 1, 0)) == value] = number
    algorithm = hd.AlgorithmIdentificationSequence(name="brats_seg", version=__version__,
                                                   family=codes.DCM.ArtificialIntelligence)
    segments = [hd.seg.SegmentDescription(segment_number=n, segment_label=str(s.labels[v])[:64],
                                          segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                                          segmented_property_type=codes.SCT.Neoplasm,
                                          algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                          algorithm_identification=algorithm)
                for n, v in enumerate(values, start=1)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=900, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="brats_seg", manufacturer_model_name="brats_seg",
        software_versions=__version__, device_serial_number="none", series_description=series_description,
        omit_empty_frames=False)
    with atomic_path(path) as tmp:
        seg.save_as(str(tmp))
    return Path(path)
