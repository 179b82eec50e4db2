"""Shared fixtures: the real BraTS cases, and tiny synthetic NIfTI cases in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import tiny_volumes, write_nifti

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRATS_SEG_TEST_DATA", ROOT.parent / "shared" / "data"))

BRATS18_CASES = ("Brats18_2013_3_1", "Brats18_CBICA_AQN_1", "Brats18_TCIA01_201_1", "Brats18_TCIA13_623_1")
GLI_CASE = "BraTS-GLI-00000-000"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared real cases (env BRATS_SEG_TEST_DATA, default ../shared/data)."""
    if not (SHARED_DATA / "brats2018").is_dir():
        pytest.fail(f"shared real data not found at {SHARED_DATA}; set BRATS_SEG_TEST_DATA")
    return SHARED_DATA


@pytest.fixture
def brats2021_case(tmp_path) -> Path:
    """A dataset folder with one tiny BraTS 2017-2021 style case; returns the dataset folder."""
    vols, label = tiny_volumes()
    case = tmp_path / "data" / "BraTS2021_00001"
    for name, v in vols.items():
        write_nifti(case / f"BraTS2021_00001_{name}.nii.gz", v)
    write_nifti(case / "BraTS2021_00001_seg.nii.gz", label)
    return tmp_path / "data"
