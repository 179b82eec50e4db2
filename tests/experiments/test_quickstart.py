"""``brats-seg quickstart`` end to end with tiny settings: on synthetic cases (labeled as such, no published
rows beside them) and on real shared cases (cases counted, a seeded bootstrap interval per region)."""

import json

import nibabel as nib
import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.experiments.datasets import DataPlan, split_dataset
from brats_seg.experiments.heldout_scores import bootstrap_interval
from brats_seg.experiments.quickstart_report import heldout_intervals

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "1", "--no-progress"]


def test_quickstart_on_synthetic_cases_says_so(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--cases", "4", "--spacing", "4", "--heldout", "0.25",
                 "--patch", "32", "32", "32", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "held-out Dice on 1 case, synthetic (far easier than real scans)" in printed
    summary = json.loads((out / "quickstart.json").read_text())
    assert summary["synthetic"] and summary["n_scored"] == 1
    assert len(summary["heldout_cases"]) == 1 and len(summary["train_cases"]) == 3
    assert not set(summary["heldout_cases"]) & set(summary["train_cases"])
    for region in ("WT", "TC", "ET"):
        assert 0.0 <= summary["metrics"][region]["dice"]["mean"] <= 1.0
    case_id = summary["heldout_cases"][0]
    pred = nib.load(str(out / "predictions" / f"{case_id}.nii.gz"))
    raw = nib.load(str(out / "data" / case_id / f"{case_id}_flair.nii.gz"))
    assert pred.shape == raw.shape and (pred.affine == raw.affine).all()
    assert (out / "overlays" / f"{case_id}.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "## Held-out scores on 1 case, synthetic (far easier than real scans)" in md
    assert "| WT (synthetic) |" in md and "far easier than real BraTS scans" in md
    assert "nnU-Net" not in md and "## Published" not in md  # no published rows beside synthetic
    assert f"overlays/{case_id}.png" in md and "run/curves.png" in md
    assert (out / "run" / "curves.png").is_file() and (out / "evaluation" / "boxplots.png").is_file()
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 and "nnU-Net" not in html
    assert "1 case, synthetic (far easier than real scans)" in html


@pytest.fixture
def real_cases_3mm(shared_data, tmp_path):
    """The four shared BraTS 2018 cases (real scans and expert labels) resampled to 3 mm, so that predicting
    two of them with the quickstart's U-Net takes seconds on a CPU instead of minutes."""
    from nibabel.processing import resample_to_output

    root = tmp_path / "brats2018_3mm"
    for case in sorted((shared_data / "brats2018").iterdir()):
        for f in sorted(case.glob("*.nii.gz")):
            img = nib.load(str(f))
            order = 0 if f.name.endswith("_seg.nii.gz") else 1  # labels: nearest neighbour
            small = resample_to_output(img, voxel_sizes=(3.0, 3.0, 3.0), order=order)
            (root / case.name).mkdir(parents=True, exist_ok=True)
            nib.save(small, str(root / case.name / f.name))
    return root


@pytest.mark.slow
def test_quickstart_on_real_cases_counts_them_and_gives_intervals(real_cases_3mm, tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--data", str(real_cases_3mm), "--out", str(out), "--heldout", "0.5",
                 "--patch", "32", "32", "32", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "held-out Dice on 2 cases, real: WT" in printed and "95% interval" in printed
    summary = json.loads((out / "quickstart.json").read_text())
    assert not summary["synthetic"] and summary["n_scored"] == 2 and len(summary["train_cases"]) == 2
    rows = _metrics_rows(out)
    for region in ("WT", "TC", "ET"):
        dice = [r["dice"] for r in rows if r["region"] == region]
        ci = summary["intervals"][region]
        assert ci["n"] == 2 and ci["dice"] == [round(v, 4) for v in bootstrap_interval(dice, seed=0)]
        assert ci["dice"][0] <= np.mean(dice) + 1e-4 and np.mean(dice) - 1e-4 <= ci["dice"][1]
    md = (out / "report.md").read_text()
    assert "## Held-out scores on 2 cases, real" in md and "2 held-out real cases scored" in md
    assert "Dice mean, 95 % interval" in md and " to " in md
    scores, published = md.split("## Published challenge results (other, real data: not comparable")
    assert "nnU-Net" not in scores and "nnU-Net" in published and "OTHER DATA" in published


def _metrics_rows(out):
    import csv

    with open(out / "evaluation" / "metrics.csv") as f:
        return [{"region": r["region"], "dice": float(r["dice"])} for r in csv.DictReader(f)]


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = [0.2, 0.9, 0.7, 0.8]
    a, b = bootstrap_interval(values, seed=3), bootstrap_interval(values, seed=3)
    assert a == b and a[0] < np.mean(values) < a[1] and a[1] - a[0] > 0.2  # four cases: a wide interval
    assert bootstrap_interval([0.5]) is None and bootstrap_interval([0.4, 0.4]) == (0.4, 0.4)
    rows = [{"region": r, "status": "ok", "dice": d, "hd95": 2.0} for r in ("WT", "TC", "ET") for d in values]
    iv = heldout_intervals(rows, seed=3)
    assert iv["WT"]["n"] == 4 and iv["WT"]["dice"] == [round(v, 4) for v in a] and iv["ET"]["hd95"] == [2.0, 2.0]


def test_heldout_fraction_is_deterministic_and_keeps_cases_for_training(tmp_path):
    from helpers import write_dataset

    write_dataset(tmp_path / "d", "brats2021", n_cases=5)
    a = split_dataset(tmp_path / "d", DataPlan(n_test=0.9, seed=3), min_train=2)
    b = split_dataset(tmp_path / "d", DataPlan(n_test=0.9, seed=3), min_train=2)
    assert [c.case_id for c in a.test] == [c.case_id for c in b.test]
    assert len(a.train) == 2 and len(a.test) == 3 and not {c.case_id for c in a.train} & {c.case_id for c in a.test}
    assert len(split_dataset(tmp_path / "d", DataPlan(n_test=0.2), min_train=2).test) == 1


def test_quickstart_trains_for_a_time_budget(tmp_path):
    """The quickstart's default is `--time-budget` minutes (the trainer's elapsed-time schedule), not epochs."""
    import yaml

    from brats_seg.cli.quickstart import add_arguments
    from brats_seg.experiments.quickstart import QuickstartConfig

    parser = __import__("argparse").ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).time_budget == QuickstartConfig.time_budget == 3.0
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--cases", "4", "--spacing", "4", "--heldout", "0.25",
                 "--patch", "32", "32", "32", "--time-budget", "0.05", "--steps-per-epoch", "2", "--batch-size", "1",
                 "--no-progress"]) == 0
    run_config = yaml.safe_load((out / "run" / "config.yaml").read_text())
    assert run_config["time_budget"] == 0.05
    summary = json.loads((out / "quickstart.json").read_text())
    assert summary["config"]["time_budget"] == 0.05 and summary["train"]
    assert "for a 0.05-minute budget" in (out / "report.md").read_text()
