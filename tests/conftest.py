"""Shared fixtures: the real BraTS cases, tiny synthetic NIfTI cases in tmp_path, and seeded randomness.

Every test starts with the python, numpy and torch global generators seeded with
``BRATS_SEG_TEST_SEED`` (default 0), so a test gives the same result alone, in any order and
in any run; a failing test's report ends with a "random seeds" section saying which seed it
started from and the last torch seed it set (a test or ``train()`` may reseed), and how to rerun.
Fixtures wider than one test seed their own generators.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_volumes, write_nifti

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BRATS_SEG_TEST_DATA", ROOT.parent / "shared" / "data"))

BRATS18_CASES = ("Brats18_2013_3_1", "Brats18_CBICA_AQN_1", "Brats18_TCIA01_201_1", "Brats18_TCIA13_623_1")
GLI_CASE = "BraTS-GLI-00000-000"
TEST_SEED = int(os.environ.get("BRATS_SEG_TEST_SEED", "0"))


def pytest_report_header(config) -> str:
    return f"random seed: {TEST_SEED} (python, numpy, torch; reseeded before every test; BRATS_SEG_TEST_SEED)"


@pytest.fixture(autouse=True)
def seeded_rngs():
    """Seed python's, numpy's and torch's global generators before every test."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    torch.manual_seed(TEST_SEED)
    yield TEST_SEED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, add the seeds the test used to its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.sections.append(("random seeds", (
            f"started from seed {TEST_SEED} (python random, numpy, torch); last torch seed set:"
            f" {torch.initial_seed()}\nrerun: BRATS_SEG_TEST_SEED={TEST_SEED} pytest '{item.nodeid}'")))


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
