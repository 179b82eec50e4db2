"""BraTS rank-then-aggregate: hand-computed ranks, ties, missing cases, and the CLI."""

from __future__ import annotations

import csv

import pytest

from brats_seg.cli import main
from brats_seg.errors import BratsSegError
from brats_seg.evaluation.ranking import rank_runs
from brats_seg.evaluation.report import write_metrics_csv


def _rows(values):
    """values: {case: (dice, hd95)} -> rows for every region (same values in each region)."""
    return [{"case_id": c, "region": r, "status": "ok", "dice": d, "hd95": h}
            for c, (d, h) in values.items() for r in ("WT", "TC", "ET")]


RUNS = {
    "A": _rows({"c1": (0.9, 2.0), "c2": (0.5, 10.0)}),
    "B": _rows({"c1": (0.8, 2.0), "c2": (0.7, 5.0)}),
    "C": _rows({"c1": (0.7, 8.0)}),  # c2 not scored: ranks last there
}


def test_hand_computed_ranks():
    r = rank_runs(RUNS)
    # c1 dice: A1 B2 C3; c1 hd95: A,B tie 1.5, C3; c2 dice: B1 A2 C3; c2 hd95: B1 A2 C3
    assert r.mean_rank["A"] == pytest.approx((1 + 1.5 + 2 + 2) / 4)
    assert r.mean_rank["B"] == pytest.approx((2 + 1.5 + 1 + 1) / 4)
    assert r.mean_rank["C"] == pytest.approx(3.0)
    assert r.runs == ["B", "A", "C"]
    assert r.final_rank == {"A": 2.0, "B": 1.0, "C": 3.0}
    assert r.rank_by_item["A"]["WT hd95"] == pytest.approx((1.5 + 2) / 2)
    assert r.mean_value["C"]["ET dice"] == pytest.approx(0.7)
    assert r.n_cases == 2


def test_ties_share_the_final_rank():
    r = rank_runs({"A": _rows({"c1": (0.9, 1.0)}), "B": _rows({"c1": (0.9, 1.0)})})
    assert r.final_rank == {"A": 1.0, "B": 1.0} and r.mean_rank["A"] == 1.5


def test_errors():
    with pytest.raises(BratsSegError, match="at least two"):
        rank_runs({"A": RUNS["A"]})
    with pytest.raises(BratsSegError, match="--lesionwise"):
        rank_runs(RUNS, metrics=("lesion_dice", "lesion_hd95"))


def test_rank_cli(tmp_path, capsys):
    for name, rows in RUNS.items():
        write_metrics_csv(tmp_path / name / "metrics.csv", rows, ("dice", "hd95"))
    code = main(["rank", *(str(tmp_path / n) for n in "ABC"), "--out", str(tmp_path / "rk")])
    out = capsys.readouterr().out
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(("1", "2", "3"))]
    assert lines[0].split()[:2] == ["1", "B"] and lines[1].split()[:2] == ["2", "A"]
    with open(tmp_path / "rk" / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["B", "A", "C"] and float(rows[2]["mean_rank"]) == 3.0
    assert main(["rank", str(tmp_path / "A"), str(tmp_path / "nope")]) == 2


def test_ranks_every_group_the_runs_scored():
    """2024+ schemes score more groups (RC here): the ranking uses them all."""
    def rows(dice_rc):
        return [{"case_id": "c1", "region": g, "status": "ok", "dice": d, "hd95": 1.0}
                for g, d in (("WT", 0.9), ("TC", 0.9), ("ET", 0.9), ("RC", dice_rc))]

    r = rank_runs({"A": rows(0.2), "B": rows(0.8)})
    assert "RC dice" in r.rank_by_item["A"] and r.runs == ["B", "A"]
    assert r.rank_by_item["A"]["RC dice"] == 2.0 and r.rank_by_item["A"]["WT dice"] == 1.5
