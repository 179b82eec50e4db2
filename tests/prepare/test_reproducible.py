"""``prepare`` gives the same images and transforms twice on one machine (issue 24, item 0).

A cheap configuration on a real (skull-stripped) case: T1c and FLAIR, few iterations."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import SIM_CASE, brats18_files

from brats_seg.prepare import PrepareConfig, prepare_case, scan_set
from brats_seg.prepare.settings import RegistrationConfig

pytestmark = pytest.mark.realdata


def test_two_runs_give_identical_images_and_transforms(shared_data, tmp_path):
    files = brats18_files(shared_data, SIM_CASE)
    cheap = RegistrationConfig(iterations=15, samples=5_000, shrink=(4, 2), sigmas=(2.0, 1.0))
    cfg = PrepareConfig(sequences=("t1c", "t2f"), brain_extraction="none", n4=True, interpolation="linear",
                        rigid=cheap, affine=replace(cheap, shrink=(2,), sigmas=(2.0,)),
                        working_mm=3.0)
    runs = [prepare_case(scan_set({m: files[m] for m in ("t1c", "t2f")}, "r"), tmp_path / f"run{k}", cfg,
                         progress=False) for k in range(2)]
    a, b = runs
    for m in ("t1c", "t2f"):
        assert np.array_equal(a.images[m], b.images[m]), m
    for name in ("t2f_to_t1c.tfm", "t1c_to_atlas.tfm"):
        assert (a.folder / name).read_text() == (b.folder / name).read_text(), name
    record = json.loads((a.folder / "prepare.json").read_text())
    assert record["reproducibility"]["registration_seeds"] == {"rigid": 1, "affine": 1}
    assert record["reproducibility"]["registration_threads"] == {"rigid": 1, "affine": 1}
    assert record["registrations"] == json.loads((b.folder / "prepare.json").read_text())["registrations"]


def test_seed_zero_is_refused():
    with pytest.raises(ValueError, match="wall-clock"):
        RegistrationConfig(seed=0)
