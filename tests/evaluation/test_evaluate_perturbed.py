"""`brats-seg evaluate` on perturbed copies of the real cases gives the official package's values."""

from __future__ import annotations

import csv

import pytest

from brats_seg.cli import main


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_matches_official_on_perturbed_real_cases(perturbed_real, shared_data, tmp_path):
    pred_dir, cases = perturbed_real
    rows = {}
    for dataset in ("brats2018", "brats-gli"):
        out = tmp_path / dataset
        assert main(["evaluate", str(pred_dir), str(shared_data / dataset), "--out", str(out), "--no-plots",
                     "--workers", "2"]) == 0
        with open(out / "metrics.csv") as f:
            rows.update({(r["case_id"], r["region"]): r for r in csv.DictReader(f)})
    assert {c for c, _ in rows} == set(cases)
    for case_id, (_, _, official) in cases.items():
        for region, (dsc, hd) in official.items():
            row = rows[(case_id, region)]
            assert row["status"] == "ok"
            assert float(row["dice"]) == pytest.approx(dsc, abs=1e-6), (case_id, region)
            assert float(row["hd95"]) == pytest.approx(hd, abs=0.01), (case_id, region)
