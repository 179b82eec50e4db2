"""The shipped table of published results and `brats-seg benchmark`."""

from __future__ import annotations

import json

import pytest

from brats_seg.cli import main
from brats_seg.evaluation.challenge import DISCLAIMER, benchmark_table, reference_scores


def _summary(lesionwise=False):
    metrics = {r: {"dice": {"mean": d}, "hd95": {"mean": h}} for r, d, h in
               (("WT", 0.9, 5.0), ("TC", 0.8, 6.0), ("ET", 0.7, 7.0))}
    if lesionwise:
        for r in metrics:
            metrics[r].update({"lesion_dice": {"mean": 0.5}, "lesion_hd95": {"mean": 50.0}})
    return {"prediction_dir": "preds", "reference_dir": "refs", "n_scored": 4, "metrics": metrics}


def test_shipped_table_has_sources_and_no_unchecked_rows():
    rows = reference_scores()
    assert len(rows) >= 8
    assert all(r["source"] and r["checked"] and not r["checked"].startswith("not checked") for r in rows)
    assert not any("Myronenko" in r["method"] for r in rows)  # unconfirmed row dropped
    isensee = next(r for r in rows if r["method"].startswith("Isensee"))
    assert isensee["dice_mean"] == pytest.approx((0.8895 + 0.8506 + 0.8203) / 3)
    nnunet = next(r for r in rows if r["method"] == "nnU-Net (original)")
    assert nnunet["dice_mean"] == pytest.approx(0.9124) and nnunet["dice_wt"] is None
    # the MONAI tutorial's "ET" is MSD label 2 (non-enhancing tumour): only its WT and TC are shipped
    tutorial = next(r for r in rows if r["method"].startswith("MONAI tutorial"))
    assert tutorial["dice_et"] is None and tutorial["dice_mean"] is None and tutorial["dice_wt"] == 0.9129
    assert "label 2" in tutorial["source"] and "non-enhancing" in tutorial["source"]
    # the MONAI bundle's figures are on its 42-case validation set (README "Performance"), not its 43-case test set
    bundle = next(r for r in rows if r["method"].startswith("MONAI model zoo"))
    assert "42-case validation set" in bundle["data_split"] and "200 train / 42 validation / 43 test" in bundle[
        "data_split"]


def test_table_puts_ours_first_and_says_the_data_differ():
    table = benchmark_table(_summary(lesionwise=True), edition="2023")
    lines = table.splitlines()
    assert lines[2].startswith("| ours: preds |") and "0.8000" in lines[2] and "| 0.8000 |" in lines[2]
    assert "lesion-wise" in lines[3] and "0.5000" in lines[3]
    assert all("2023" in ln for ln in lines[4:] if ln.startswith("| Yazici"))
    assert "Jiang" not in table  # filtered by edition
    assert DISCLAIMER in table and "arXiv:2403.09942" in table


def test_benchmark_cli(tmp_path, capsys):
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "summary.json").write_text(json.dumps(_summary()))
    assert main(["benchmark", str(tmp_path / "ev"), "--out", str(tmp_path / "b.md")]) == 0
    out = capsys.readouterr().out
    assert "OTHER DATA" in out and "Isensee" in out
    assert (tmp_path / "b.md").read_text() == out.rstrip("\n") + "\n"
    assert main(["benchmark", str(tmp_path / "nothing")]) == 2


def test_published_rows_only_where_the_groups_match():
    """Issue 20: an evaluation of brats2024-gli's six groups gets our WT/TC/ET row and no published rows."""
    summary = _summary()
    summary["metrics"].update({g: {"dice": {"mean": 0.5}, "hd95": {"mean": 9.0}} for g in ("NETC", "SNFH", "RC")})
    table = benchmark_table(summary)
    assert "| ours: preds |" in table and "Isensee" not in table
    assert "No published rows: this evaluation scores WT, TC, ET, NETC, SNFH, RC" in table
    assert "Isensee" in benchmark_table(_summary())
