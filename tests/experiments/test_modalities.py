"""``brats-seg experiment modalities --preset smoke``: both arms trained, all 15 subsets scored, the tables and
the heat map written (CPU, seconds; numbers meaningless)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.conventions import REGIONS
from brats_seg.data.subsets import all_subsets, subset_name
from brats_seg.experiments import modalities

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_smoke_writes_all_15_subsets(tmp_path, capsys):
    out = tmp_path / "mod"
    assert main(["experiment", "modalities", "--out", str(out), "--no-progress"]) == 0
    assert "16 rows" in capsys.readouterr().out
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    names = [subset_name(s) for s in all_subsets()]
    assert [r["subset"] for r in rows] == [*names, modalities.MEAN_ROW]
    assert list(rows[0]) == list(modalities.COLUMNS)
    for arm in modalities.ARMS:
        for r in REGIONS:
            dice = [float(row[f"{arm}_dice_{r}"]) for row in rows]
            hd95 = [float(row[f"{arm}_hd95_{r}"]) for row in rows]
            assert all(0 <= d <= 1 for d in dice) and all(0 <= h <= 373.14 for h in hd95)
            assert dice[-1] == pytest.approx(np.mean(dice[:15]), abs=1e-5)
    # the arms differ: one was trained with dropout, the other on all four only
    assert any(row["dropout_dice_mean"] != row["zerofill_dice_mean"] for row in rows)
    with (out / "per_case.csv").open() as f:
        cases = list(csv.DictReader(f))
    assert len(cases) == 2 * 15  # two arms x 15 subsets x one held-out case
    trained = {(c["arm"], c["subset"]): c["trained"] for c in cases}
    assert all(trained["dropout", n] == "True" for n in names)
    assert [n for n in names if trained["zerofill", n] == "True"] == ["t1n+t1c+t2w+t2f"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["complete_input_cost"]) >= {"dice_mean", "dice_WT", "hd95_ET"}
    assert not math.isnan(summary["complete_input_cost"]["dice_mean"])
    md = (out / "results.md").read_text()
    assert "Published 15-subset means (other data)" in md and "RFNet | 85.670" in md
    assert "Cost of robustness on complete input" in md and "![results](results.png)" in md
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC


def test_unknown_preset_is_one_line(tmp_path, capsys):
    assert main(["experiment", "modalities", "--out", str(tmp_path), "--preset", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("choose one of smoke, cpu, full") and len(err.splitlines()) == 1
