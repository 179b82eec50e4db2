import json

import nibabel as nib

from brats_seg.experiments.common import DataPlan, split_dataset
from brats_seg.experiments.quickstart import QuickstartConfig, run_quickstart


def test_quickstart_end_to_end_tiny(tmp_path):
    cfg = QuickstartConfig(out=str(tmp_path / "qs"), synth_cases=4, synth_spacing=4.0, patch=(32, 32, 32),
                           epochs=1, steps_per_epoch=2, batch_size=1, workers=1, heldout=0.25)
    summary = run_quickstart(cfg, progress=False)
    out = tmp_path / "qs"
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
    assert f"overlays/{case_id}.png" in md and "OTHER DATA" in md and "run/curves.png" in md
    assert (out / "run" / "curves.png").is_file() and (out / "evaluation" / "boxplots.png").is_file()
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 and "Published challenge results" in html
    assert json.loads((out / "quickstart.json").read_text())["heldout_cases"] == [case_id]


def test_heldout_fraction_is_deterministic_and_keeps_cases_for_training(tmp_path):
    from helpers import write_dataset

    write_dataset(tmp_path / "d", "brats2021", n_cases=5)
    a = split_dataset(tmp_path / "d", DataPlan(n_test=0.9, seed=3), min_train=2)
    b = split_dataset(tmp_path / "d", DataPlan(n_test=0.9, seed=3), min_train=2)
    assert [c.case_id for c in a.test] == [c.case_id for c in b.test]
    assert len(a.train) == 2 and len(a.test) == 3 and not {c.case_id for c in a.train} & {c.case_id for c in a.test}
    assert len(split_dataset(tmp_path / "d", DataPlan(n_test=0.2), min_train=2).test) == 1
