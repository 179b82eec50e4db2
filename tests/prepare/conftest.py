"""Fixtures for the preparation tests: one scanner-like case made from a real BraTS case, prepared
and segmented once per session (about a minute on 2 cores), and the rule "checkpoint"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SIM_CASE = "Brats18_TCIA01_201_1"
"""The real case the simulated scans come from (rule network WT Dice 0.95 on it: it segments it)."""
SIM_SEED = 1


def brats18_files(shared_data: Path, case: str) -> dict[str, Path]:
    folder = shared_data / "brats2018" / case
    return {m: folder / f"{case}_{suffix}.nii.gz" for m, suffix in
            (("t1n", "t1"), ("t1c", "t1ce"), ("t2w", "t2"), ("t2f", "flair"))}


@pytest.fixture(scope="session")
def simulated(shared_data, tmp_path_factory):
    """``(folder, truth)``: the scanner-like case (T1c RAS-ordered, T2 .nii.gz and FLAIR .nrrd in thick
    slices, T1n a DICOM series, each moved by a known rigid motion)."""
    from brats_seg.prepare.simulate import simulate_case

    folder = tmp_path_factory.mktemp("simulated") / "scans"
    truth = simulate_case(brats18_files(shared_data, SIM_CASE), folder, seed=SIM_SEED)
    return folder, truth


@pytest.fixture(scope="session")
def rule_predictor():
    from rulenet import rule_predictor

    return rule_predictor()


@pytest.fixture(scope="session")
def segmented(simulated, rule_predictor, tmp_path_factory):
    """The simulated case prepared and segmented (labels on the T1c, FLAIR and T1n grids, with
    probabilities), through the Python API."""
    from brats_seg.prepare import scan_set, segment_case

    folder, truth = simulated
    files = {m: folder / s["file"] for m, s in truth["sequences"].items()}
    out = tmp_path_factory.mktemp("segmented")
    return segment_case(scan_set(files, "sim"), rule_predictor, out, native=("t1c", "t2f", "t1n"),
                        probabilities=True, progress=False)


@pytest.fixture(scope="session")
def volume(shared_data):
    """A 40x36x10 crop of a real T1c (int16), for the DICOM corpus."""
    import nibabel as nib
    import numpy as np
    from dicom_corpus import crop

    return crop(np.asarray(nib.load(brats18_files(shared_data, SIM_CASE)["t1c"]).dataobj))


@pytest.fixture(scope="session")
def corpus(volume, tmp_path_factory):
    """Every variant of tests/dicom_corpus.py (written once, under a second)."""
    from dicom_corpus import write_corpus

    return write_corpus(volume, tmp_path_factory.mktemp("corpus"))
