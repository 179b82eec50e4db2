"""``brats-seg experiment transfer --source-data ... --target-data ...`` end to end with the smoke preset on
real shared cases cropped small (BraTS 2021 as the source, BraTS-Africa as the new site): every arm,
leave-one-case-out folds, the table, the picture, the per-case CSV with intervals and paired differences."""

from __future__ import annotations

import csv
import json

import pytest
from sitehelp import crop_cases

from brats_seg.cli import main
from brats_seg.experiments.site import ARMS, PRESETS


def test_site_smoke_end_to_end(shared_data, tmp_path, capsys):
    source = crop_cases(shared_data, "brats2021", 3, tmp_path / "brats2021", size=32)
    target = crop_cases(shared_data, "ssa", 2, tmp_path / "ssa", size=32)
    out = tmp_path / "out"
    assert main(["experiment", "transfer", "--source-data", str(source), "--target-data", str(target),
                 "--out", str(out), "--preset", "smoke", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["arm"]: r for r in summary["rows"]}
    assert list(rows) == list(ARMS) and summary["mode"] == "site" and len(summary["target_cases"]) == 2
    assert all(r["n_target"] == 2 and 0 <= r["dice_mean"] <= 1 and r["cpu_seconds"] > 0 for r in rows.values())
    assert rows["finetune"]["diff_vs_source"] is not None and rows["source_only"]["diff_vs_source"] is None
    assert len(rows["finetune"]["dice_ci"]) == 2
    with open(out / "per_case.csv") as f:
        cases = list(csv.DictReader(f))
    assert {(c["arm"], c["domain"]) for c in cases} >= {(a, "target") for a in ARMS} | {(a, "source") for a in ARMS}
    assert sum(c["domain"] == "target" for c in cases) == 2 * len(ARMS)
    assert (out / "results.png").stat().st_size > 0 and "source_only" in (out / "results.md").read_text()


def test_site_presets_and_refusals(tmp_path):
    assert set(PRESETS) == {"smoke", "cpu"} and PRESETS["cpu"].target_cases == 0  # all six SSA cases
    assert main(["experiment", "transfer", "--source-data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert main(["experiment", "ensembles", "--target-data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):
        main(["experiment", "transfer", "--source-data"])
