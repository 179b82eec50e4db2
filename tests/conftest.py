"""Shared fixtures: the real BraTS cases, and tiny synthetic NIfTI cases in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

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


def tiny_affine(spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = (-10.0, -12.0, 5.0)
    return aff


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), tiny_affine() if affine is None else affine), str(path))
    return path


def tiny_volumes(shape=(24, 24, 20), seed=0):
    """Four modality volumes (dict name -> float32 array) and a brats2021 label map.

    A brain-like ellipsoid of nonzero intensities with a tumor: edema (2) around a
    core (1) with an enhancing shell (4)."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    c = [(s - 1) / 2 for s in shape]
    r = sum(((idx[i] - c[i]) / (shape[i] * 0.45)) ** 2 for i in range(3))
    brain = r <= 1.0
    t = sum(((idx[i] - c[i] - 2) / 4.0) ** 2 for i in range(3))
    label = np.zeros(shape, np.uint8)
    label[(t <= 2.2) & brain] = 2
    label[t <= 1.0] = 4
    label[t <= 0.4] = 1
    vols = {}
    for k, name in enumerate(("t1", "t1ce", "t2", "flair")):
        v = (100 + 20 * k + 10 * rng.standard_normal(shape)).astype(np.float32)
        v += 40.0 * (label > 0) * (1 + k % 2)
        vols[name] = np.where(brain, v, 0).astype(np.float32)
    return vols, label


@pytest.fixture
def brats2021_case(tmp_path) -> Path:
    """A dataset folder with one tiny BraTS 2017-2021 style case; returns the dataset folder."""
    vols, label = tiny_volumes()
    case = tmp_path / "data" / "BraTS2021_00001"
    for name, v in vols.items():
        write_nifti(case / f"BraTS2021_00001_{name}.nii.gz", v)
    write_nifti(case / "BraTS2021_00001_seg.nii.gz", label)
    return tmp_path / "data"
