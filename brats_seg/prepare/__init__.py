"""Scans as the scanner gives them -> a BraTS-form case in the MNI frame, and results back.

::

    import brats_seg as bs
    scans = bs.scan_set({"t1c": "t1c_dicom/", "t1n": "t1.nii.gz", "t2w": "t2.nrrd", "t2f": "flair.nii.gz"})
    prepared = bs.prepare_case(scans, "prepared/")            # prepared.images["t1c"]: (182, 218, 182)
    seg = bs.segment_case(scans, bs.Predictor(["best.pt"]), "seg/", native=("t1c", "t2f"))
    seg.native["t1c"]                                          # labels on the T1c's own grid

This package imports conventions and data only (ARCHITECTURE.md §1); the predictor is
passed in. Steps: :mod:`.series` (reading, refusals; DICOM found and checked by
:mod:`.dicom_index`), :mod:`.sequences` (which is which),
:mod:`.steps` and :mod:`.registration` (N4, co-registration, atlas), :mod:`.brain` (brain
extraction back-ends), :mod:`.spatial_transforms` (one resampling; back to native), :mod:`.qc`.
"""

from .batch_cases import BatchReport, run_cases
from .brain import BRAIN_EXTRACTORS, BrainExtractor, looks_skull_stripped, register_brain_extractor
from .pipeline import PreparedCase, prepare_case
from .qc import MIN_NMI, MIN_SIMILARITY
from .segment import Segmented, required_sequences, segment_case, to_native
from .sequences import ScanSet, ScanSource, scan_set, scan_set_from_folder, scan_sources
from .settings import PrepareConfig, RegistrationConfig

__all__ = [
    "BRAIN_EXTRACTORS", "BatchReport", "BrainExtractor", "MIN_NMI", "MIN_SIMILARITY", "PrepareConfig",
    "PreparedCase", "RegistrationConfig", "ScanSet", "ScanSource", "Segmented", "looks_skull_stripped",
    "prepare_case", "register_brain_extractor", "required_sequences", "run_cases", "scan_set",
    "scan_set_from_folder", "scan_sources", "segment_case", "to_native",
]
