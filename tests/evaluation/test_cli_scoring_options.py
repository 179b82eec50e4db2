"""README "Reproducing a challenge-style evaluation" through `brats-seg evaluate` and `rank`: the HD95 modes,
the lesion-wise rules and their per-challenge parameters, the 2024 MET and MEN-RT groups, the tie rule."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from deepmind_port import hd95 as surfel_port

import brats_seg as bs
from brats_seg.cli import main
from brats_seg.evaluation.report import write_metrics_csv
from helpers import write_nifti


def _write(root, maps, layout="brats2023"):
    """maps: {case_id: labels}; references as <id>/<id>-seg.nii.gz (2023+) or <id>/<id>_seg.nii.gz."""
    sep = "-" if layout == "brats2023" else "_"
    for case_id, labels in maps.items():
        write_nifti(root / case_id / f"{case_id}{sep}seg.nii.gz", labels.astype(np.uint8))
    return root


def _evaluate(tmp_path, refs, preds, *flags, layout="brats2023"):
    ref = _write(tmp_path / "ref", refs, layout)
    pred = tmp_path / "pred"
    for case_id, labels in preds.items():
        write_nifti(pred / f"{case_id}.nii.gz", labels.astype(np.uint8))
    out = tmp_path / ("out" + "".join(flags).replace("-", "_"))
    assert main(["evaluate", str(pred), str(ref), "--out", str(out), "--no-plots", "--workers", "1", *flags]) == 0
    with open(out / "metrics.csv") as f:
        return {(r["case_id"], r["region"]): r for r in csv.DictReader(f)}


def test_hd95_modes_pooled_max_surfel(tmp_path):
    """pooled (official package, default) 9.0, max (MONAI) 9.5, surfel = DeepMind's surface-distance code."""
    ref = np.zeros((16, 4, 4), np.uint8)
    ref[0, 0, 0] = 4
    pred = ref.copy()
    pred[10, 0, 0] = 4  # ref->pred [0]; pred->ref [0, 10]
    refs, preds = {"BraTS2021_00001": ref}, {"BraTS2021_00001": pred}
    want = {"pooled": 9.0, "max": 9.5, "surfel": surfel_port(pred == 4, ref == 4)}
    assert want["surfel"] not in (9.0, 9.5)
    for mode, value in want.items():
        flags = () if mode == "pooled" else ("--hd95-mode", mode)
        rows = _evaluate(tmp_path, refs, preds, *flags, layout="brats2021")
        for region in ("WT", "TC", "ET"):
            assert float(rows[("BraTS2021_00001", region)]["hd95"]) == pytest.approx(value, abs=1e-6), (mode, region)


def _cubes(shape, *starts, size=4, value=3):
    m = np.zeros(shape, np.uint8)
    for x in starts:
        m[x:x + size, 8:8 + size, 8:8 + size] = value
    return m


SHAPE = (40, 24, 24)


def test_lesionwise_missed_false_positive_and_parameters_per_challenge(tmp_path):
    """Missed and false-positive lesions score Dice 0 and HD95 374; dilation 3 (GLI) merges reference lesions that
    dilation 1 (MEN) keeps apart; lesions of <= 50 voxels are dropped (2 for MET, read from the case id)."""
    refs = {"BraTS-GLI-00001-000": _cubes(SHAPE, 2, 20),  # two 64-voxel lesions
            "BraTS-GLI-00002-000": _cubes(SHAPE, 2, 9),  # two lesions 3 voxels apart
            "BraTS-MET-00003-000": _cubes(SHAPE, 2, size=3)}  # one 27-voxel lesion
    preds = {"BraTS-GLI-00001-000": _cubes(SHAPE, 2, 32),  # the first exactly, one false positive
             "BraTS-GLI-00002-000": _cubes(SHAPE, 2),
             "BraTS-MET-00003-000": np.zeros(SHAPE, np.uint8)}  # the small lesion missed
    rows = _evaluate(tmp_path, refs, preds, "--lesionwise")
    for region in ("WT", "TC", "ET"):  # label 3 is in all three (brats2023)
        a = rows[("BraTS-GLI-00001-000", region)]
        assert (a["lesions_tp"], a["lesions_fn"], a["lesions_fp"]) == ("1", "1", "1")
        assert float(a["lesion_dice"]) == pytest.approx(1 / 3) and float(a["lesion_hd95"]) == pytest.approx(2 * 374 / 3)
        b = rows[("BraTS-GLI-00002-000", region)]  # gli: one merged 128-voxel lesion
        assert float(b["lesion_dice"]) == pytest.approx(2 * 64 / (64 + 128)) and b["lesions_fn"] == "0"
        c = rows[("BraTS-MET-00003-000", region)]  # met keeps a 27-voxel lesion (threshold 2): missed
        assert c["lesions_fn"] == "1" and float(c["lesion_dice"]) == 0.0 and float(c["lesion_hd95"]) == 374.0
    rows = _evaluate(tmp_path, refs, preds, "--lesionwise", "--challenge", "men")
    b = rows[("BraTS-GLI-00002-000", "WT")]  # men: dilation 1 keeps the two lesions apart, one missed
    assert (b["lesions_tp"], b["lesions_fn"]) == ("1", "1") and float(b["lesion_dice"]) == pytest.approx(0.5)
    assert float(b["lesion_hd95"]) == pytest.approx(187.0)
    c = rows[("BraTS-MET-00003-000", "WT")]  # men's threshold 50 drops the small lesion: nothing to score
    assert c["lesions_fn"] == "0" and float(c["lesion_dice"]) == 1.0


def test_lesion_hd95_is_the_challenge_codes_unless_asked_otherwise(tmp_path):
    ref = _cubes(SHAPE, 10, size=6)
    pred = ref.copy()
    pred[16:18, 8:14, 8:10] = 3  # a bump on one face
    refs, preds = {"BraTS-GLI-00001-000": ref}, {"BraTS-GLI-00001-000": pred}
    default = float(_evaluate(tmp_path, refs, preds, "--lesionwise")[("BraTS-GLI-00001-000", "WT")]["lesion_hd95"])
    assert default == pytest.approx(surfel_port(pred > 0, ref > 0), abs=1e-9)
    pooled = _evaluate(tmp_path, refs, preds, "--lesionwise", "--lesion-hd95-mode", "pooled")
    want = bs.evaluate_case(pred, ref, (1.0, 1.0, 1.0), "brats2023", hd95_mode="pooled")["WT"]["hd95"]
    assert float(pooled[("BraTS-GLI-00001-000", "WT")]["lesion_hd95"]) == pytest.approx(want, abs=1e-9)
    assert want != pytest.approx(default)


def test_met_2024_and_men_rt_groups(tmp_path):
    """brats2024-met scores WT/TC/ET and RC; brats2024-men-rt scores its one group, GTV."""
    met = _cubes(SHAPE, 10, size=8, value=2)
    met[12:16, 10:14, 10:14] = 3
    met[2:6, 2:6, 2:6] = 4  # a resection cavity: the 2024 MET set
    pred = np.where(met == 4, 0, met)
    rows = _evaluate(tmp_path, {"BraTS-MET-00001-000": met}, {"BraTS-MET-00001-000": pred})
    got = {g: float(rows[("BraTS-MET-00001-000", g)]["dice"]) for g in ("WT", "TC", "ET", "RC")}
    assert got == {"WT": 1.0, "TC": 1.0, "ET": 1.0, "RC": 0.0}
    assert {g for _, g in rows} == {"WT", "TC", "ET", "RC"}
    gtv = _cubes(SHAPE, 10, size=8, value=1)
    shifted = np.roll(gtv, 2, axis=0)
    rows = _evaluate(tmp_path / "rt", {"BraTS-MEN-RT-0001-1": gtv}, {"BraTS-MEN-RT-0001-1": shifted})
    assert {g for _, g in rows} == {"GTV"}
    assert float(rows[("BraTS-MEN-RT-0001-1", "GTV")]["dice"]) == pytest.approx(6 / 8)


def test_rank_ties_share_the_mean_rank_and_the_better_place(tmp_path, capsys):
    def run(name, dice):
        rows = [{"case_id": "c1", "region": r, "status": "ok", "dice": dice, "hd95": 1.0}
                for r in ("WT", "TC", "ET", "RC")]  # a 2024 group is ranked too
        write_metrics_csv(tmp_path / name / "metrics.csv", rows, ("dice", "hd95"))

    run("A", 0.9)
    run("B", 0.9)
    run("C", 0.5)
    assert main(["rank", *(str(tmp_path / n) for n in "ABC"), "--out", str(tmp_path / "rk")]) == 0
    capsys.readouterr()
    with open(tmp_path / "rk" / "ranking.csv") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    # dice: A and B tie for places 1-2 (1.5 each); hd95: all three tie (2 each); C: 3 and 2
    assert float(rows["A"]["mean_rank"]) == float(rows["B"]["mean_rank"]) == pytest.approx((1.5 + 2) / 2)
    assert float(rows["C"]["mean_rank"]) == pytest.approx((3 + 2) / 2)
    assert [float(rows[n]["final_rank"]) for n in "ABC"] == [1.0, 1.0, 3.0]
    assert float(rows["C"]["rank RC dice"]) == 3.0 and float(rows["A"]["rank RC dice"]) == 1.5
