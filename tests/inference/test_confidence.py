"""How sure a prediction is: known scores on hand-made masks; the threshold rule on known scores; the rule
network (tests/prepare/rulenet.py, WT Dice 0.95 on Brats18_TCIA01_201_1) is not flagged on that real case
and is flagged on the same case scrambled (a 3-D jigsaw of 8-voxel blocks), and mirrored, for disagreement
only (its hand-made rules disagree with their mirror image far beyond a trained model); predict's one
line, sidecar and exit status 4 (--exit-unsure)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.data.reading.cases import CaseVolumes
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.inference.confidence import (
    THRESHOLDS,
    cross_validated_threshold,
    disagreement,
    plausibility,
    verdict,
    youden_threshold,
)

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "prepare"))
from test_cli_predict import tiny_checkpoint  # noqa: E402

from helpers import tiny_volumes, write_nifti  # noqa: E402

CASE = "Brats18_TCIA01_201_1"


def test_known_scores():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:6, 2:6, 2:6] = 2  # 64 voxels, half of them outside the brain below
    labels[15, 15, 15] = 1  # one crumb: 1/65 of the tumour away from the main mass
    brain = np.zeros_like(labels, bool)
    brain[4:, :, :] = True
    flair = np.where(labels > 0, 10.0, 1.0)
    scores = plausibility(labels, brain, flair)
    assert scores == {"outside_brain": round(32 / 65, 4), "flair_dark": 0.0, "scattered": round(1 / 65, 4)}
    assert plausibility(np.zeros_like(labels), brain, flair)["scattered"] is None
    mean = np.full((3, 4, 4, 4), 0.5, np.float32)
    assert disagreement(mean, np.full_like(mean, 0.25)) == 0.5 and disagreement(mean, None) is None
    v = verdict({"disagreement": None, **scores})
    assert v["flagged"] and v["reasons"] == [f"outside_brain 0.49 > {THRESHOLDS['outside_brain']:.2g}"]


def scramble(vol: CaseVolumes, block: int = 8, seed: int = 0) -> CaseVolumes:
    """The same voxels as a 3-D jigsaw: ``block``-voxel cubes permuted (one permutation for every sequence)."""
    c, *shape = vol.image.shape
    n = [s // block for s in shape]
    image = vol.image[:, :n[0] * block, :n[1] * block, :n[2] * block]
    cubes = image.reshape(c, n[0], block, n[1], block, n[2], block).transpose(1, 3, 5, 0, 2, 4, 6).reshape(
        -1, c, block, block, block)
    cubes = cubes[np.random.default_rng(seed).permutation(len(cubes))]
    out = cubes.reshape(*n, c, block, block, block).transpose(3, 0, 4, 1, 5, 2, 6).reshape(c, *image.shape[1:])
    return CaseVolumes(vol.case_id, np.ascontiguousarray(out), vol.channels, None, vol.reference, vol.label_scheme)


@pytest.fixture(scope="module")
def real_case(shared_data):
    case = next(c for c in discover_cases(shared_data / "brats2018") if c.case_id == CASE)
    return load_case(case, with_label=False)


def test_threshold_separates_wrong_cases_and_is_checked_case_by_case():
    """Known scores: the wrong cases (0.3 and up) lie above the right ones (0.1 and below): the midpoint
    0.2, and every held-out case is told right; a right case at 0.4 among them is a held-out false
    alarm; one kind only: nothing to choose."""
    wrong = [False, False, False, True, True, True]
    scores = [0.01, 0.05, 0.1, 0.3, 0.35, 0.5]
    assert youden_threshold(scores, wrong) == pytest.approx(0.2)
    assert youden_threshold(scores, [False] * 6) is None
    cv = cross_validated_threshold(scores, wrong)
    assert cv["threshold"] == pytest.approx(0.2) and cv["sensitivity"] == 1.0 and cv["specificity"] == 1.0
    assert [f["flagged"] for f in cv["folds"]] == wrong
    mixed = cross_validated_threshold([0.01, 0.05, 0.4, 0.3, 0.35, 0.5], wrong)
    assert mixed["counts"] == {"tp": 3, "fn": 0, "tn": 2, "fp": 1}


def test_rule_network_sure_on_the_real_case_unsure_on_it_scrambled(real_case):
    from rulenet import rule_predictor

    predictor = rule_predictor()
    sure = predictor.predict(real_case).info["confidence"]  # no mirroring: plausibility only
    assert not sure["flagged"] and sure["scores"]["disagreement"] is None, sure
    unsure = predictor.predict(scramble(real_case)).info["confidence"]
    assert unsure["flagged"] and any(r.startswith("scattered") for r in unsure["reasons"]), unsure
    predictor.tta = 2  # two mirror combinations: the hand-made rules' mirrored outputs disagree far more
    mirrored = predictor.predict(real_case).info["confidence"]  # than a trained model's (calibration)
    assert [r.split()[0] for r in mirrored["reasons"]] == ["disagreement"], mirrored


def test_predict_says_it_in_one_line_and_exits_3_when_asked(tmp_path, capsys):
    vols, _ = tiny_volumes()
    for name, v in vols.items():
        write_nifti(tmp_path / "data" / "BraTS2021_00001" / f"BraTS2021_00001_{name}.nii.gz", v)
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")  # whole tumour over the brain's whole box: beyond the brain
    args = ["predict", str(tmp_path / "data"), "--model", str(ckpt), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    flagged = [line for line in err.splitlines() if "FLAGGED" in line]
    assert len(flagged) == 1 and "outside_brain" in flagged[0] and "QC PASSED" not in err
    sidecar = json.loads((tmp_path / "a" / "BraTS2021_00001.json").read_text())
    assert sidecar["confidence"]["flagged"] and sidecar["confidence"]["thresholds"] == THRESHOLDS
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["flagged"]
    assert main([*args, "--out", str(tmp_path / "b"), "--exit-unsure"]) == 4
    quiet = tiny_checkpoint(tmp_path / "quiet.pt", bias=(-9.0, -9.0, -9.0))  # predicts nothing: not judged
    assert main(["predict", str(tmp_path / "data"), "--model", str(quiet), "--no-progress", "--exit-unsure",
                 "--out", str(tmp_path / "c")]) == 0
