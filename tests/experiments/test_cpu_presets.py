"""The `cpu` presets of `brats-seg experiment` (real data, about 20 minutes each on one core) resolved and
checked without running them, and the by-folder split they rely on, on the shared real cases."""

from __future__ import annotations

import pytest
import torch

from brats_seg.cli import main
from brats_seg.errors import ConfigError
from brats_seg.experiments import architectures, ensembles, transfer
from brats_seg.experiments.catalog import resolve_preset
from brats_seg.experiments.datasets import DataPlan, ensure_data, split_dataset

FOLDERS = ("brats2018", "brats2021", "brats2023", "brats-gli")
MODULES = {"architectures": architectures, "transfer": transfer, "ensembles": ensembles}


def models_of(name: str, cfg) -> tuple[str, ...]:
    return {"architectures": lambda: cfg.models, "transfer": lambda: (cfg.model,),
            "ensembles": lambda: tuple(m for m, _ in cfg.members)}[name]()


@pytest.mark.parametrize("name", list(MODULES))
def test_cpu_preset_trains_on_brats2018_and_holds_out_the_twelve_others(name, shared_data):
    """README "Results on the shared real cases": 4 training cases (brats2018), 12 held out, 2 mm, small models,
    a few hundred single-thread fp32 steps of 64^3 crops per arm."""
    cfg = resolve_preset(MODULES[name].PRESETS, "cpu", name)
    b = cfg.budget
    assert (b.preset, b.patch, b.threads, b.batch_size) == ("tiny", (64, 64, 64), 1, 2) and 100 <= b.steps <= 400
    assert cfg.data.split == "by_folder" and cfg.data.preprocess.spacing == (2.0, 2.0, 2.0)
    split = split_dataset([shared_data / f for f in FOLDERS], cfg.data)
    assert sorted(c.case_id for c in split.train) == sorted(p.name for p in (shared_data / "brats2018").iterdir())
    assert len(split.train) == 4 and len(split.test) == 12
    assert not {c.case_id for c in split.train} & {c.case_id for c in split.test}
    from brats_seg.models.registry import build_model

    for model in models_of(name, cfg):
        with torch.device("meta"):
            net = build_model(model, preset=b.preset)
        assert all(p % net.size_divisor == 0 for p in b.patch), model
    if name == "transfer":
        assert set(cfg.strategies) == {"scratch", "synth2real"} and cfg.source_budget.steps <= b.steps
    if name == "ensembles":
        assert len({m for m, _ in cfg.members}) == len(cfg.members) >= 3  # EMMA: different architectures


def test_by_folder_split_needs_two_folders(shared_data, tmp_path):
    plan = DataPlan(split="by_folder")
    with pytest.raises(ConfigError, match="at least two --data folders"):
        split_dataset(shared_data / "brats2018", plan)
    with pytest.raises(ConfigError, match="give at least two --data folders"):
        ensure_data(None, tmp_path, plan)
    with pytest.raises(ConfigError, match="unknown split"):
        split_dataset(shared_data / "brats2018", DataPlan(split="kfold"))


def test_random_split_pools_several_folders(shared_data):
    roots = [shared_data / "brats2018", shared_data / "brats2023"]
    split = split_dataset(roots, DataPlan(n_test=2))
    assert len(split.train) == 3 and len(split.test) == 2 and "brats2023" in split.describe()


def test_cli_takes_several_data_folders_and_names_a_missing_one(shared_data, tmp_path, capsys):
    code = main(["experiment", "transfer", "--preset", "cpu", "--out", str(tmp_path / "o"),
                 "--data", str(shared_data / "brats2018"), str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing: data folder not found" in err[0]


def test_arm_intervals_pair_cases_with_the_baseline(tmp_path, capsys):
    """README "Results on the shared real cases": the bracketed intervals and paired differences
    (data_scripts/experiment_intervals.py on per_case.csv)."""
    import csv
    import importlib.util
    from pathlib import Path

    from brats_seg.experiments.heldout_scores import arm_intervals

    rows = [{"arm": a, "case_id": f"c{i}", **{f"dice_{g}": str(d) for g in ("WT", "TC", "ET")}}
            for a, ds in (("base", (0.2, 0.4, 0.6)), ("new", (0.3, 0.5, 0.5))) for i, d in enumerate(ds)]
    base, new = arm_intervals(rows, "base")
    assert base["dice_mean"] == pytest.approx(0.4) and "diff" not in base and base["ci"][0] <= 0.4 <= base["ci"][1]
    assert new["diff"] == pytest.approx(1 / 30) and new["better"] == 2 and new["n_paired"] == 3
    assert new["diff_ci"][0] <= new["diff"] <= new["diff_ci"][1]
    path = tmp_path / "per_case.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    script = Path(__file__).resolve().parents[2] / "data_scripts" / "experiment_intervals.py"
    spec = importlib.util.spec_from_file_location("experiment_intervals", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(path), "--baseline", "base"]) == 0
    out = capsys.readouterr().out
    assert "new: mean Dice 0.433" in out and "minus base: +0.033" in out and "better on 2/3 cases" in out
    assert module.main([str(tmp_path / "nope.csv"), "--baseline", "base"]) == 2
