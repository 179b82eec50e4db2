"""The `smoke` presets of `brats-seg experiment` end to end on tiny synthetic volumes (CPU, seconds),
plus exact checks of the pieces the tables are built from."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from brats_seg.cli import main
from brats_seg.conventions import REGIONS
from brats_seg.errors import ConfigError
from brats_seg.experiments import architectures, ensembles, transfer
from brats_seg.experiments.datasets import DataPlan, ensure_data, split_dataset
from brats_seg.experiments.tables import write_results

HD95_MAX = 373.13  # legacy BraTS value for an empty prediction or reference (the 240x240x155 diagonal)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """Six synthetic BraTS 2021-style cases at 4 mm (60x60x39), made the way an experiment without --data makes them."""
    out = tmp_path_factory.mktemp("experiments")
    root = ensure_data(None, out, DataPlan(), progress=False)
    assert root == out / "data" and len(list(root.glob("Synth_*"))) == 6
    return root


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def num(x: str) -> float:
    return float(x) if x not in ("", "nan") else math.nan


def check_scores(row: dict[str, str]) -> None:
    for r in REGIONS:
        assert 0.0 <= num(row[f"dice_{r}"]) <= 1.0, row
        assert 0.0 <= num(row[f"hd95_{r}"]) <= HD95_MAX + 0.01, row
    assert num(row["dice_mean"]) == pytest.approx(np.mean([num(row[f"dice_{r}"]) for r in REGIONS]), abs=1e-5)
    assert num(row["seconds_per_case"]) > 0


def check_outputs(out: Path, n_rows: int, columns) -> list[dict[str, str]]:
    rows = read_rows(out / "results.csv")
    assert len(rows) == n_rows and list(rows[0]) == list(columns)
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC
    md = (out / "results.md").read_text()
    assert md.count("\n| ") == n_rows + 1 or md.count("\n|") >= n_rows + 2  # header + rows
    assert "![results](results.png)" in md and "**smoke preset**" in md
    json.loads((out / "summary.json").read_text())
    return rows


# --------------------------------------------------------------------------- smoke experiments


def test_architectures_smoke(synth_root, tmp_path, capsys):
    out = tmp_path / "arch"
    genotype = {"format": 1, "ops": ["conv3d", "conv2d", "p3d"], "cells": ["p3d", "conv2d", "conv3d", "p3d", "conv2d"]}
    (tmp_path / "genotype.json").write_text(json.dumps(genotype))
    assert main(["experiment", "architectures", "--data", str(synth_root), "--out", str(out), "--no-progress",
                 "--genotype", str(tmp_path / "genotype.json")]) == 0
    assert "3 rows" in capsys.readouterr().out
    models = architectures.PRESETS["smoke"].models
    rows = check_outputs(out, len(models), architectures.COLUMNS)
    assert [r["model"] for r in rows] == list(models)
    from brats_seg.models.registry import build_model, count_parameters

    kwargs = {"vnas": {"genotype": genotype}}
    for row in rows:
        check_scores(row)
        want = build_model(row["model"], preset="tiny", **kwargs.get(row["model"], {}))
        assert int(row["parameters"]) == count_parameters(want)
        assert int(row["n_train"]) == 4 and int(row["n_test"]) == 2
        assert num(row["train_seconds"]) > 0
    from brats_seg.checkpoint import load_checkpoint

    vnas = load_checkpoint(out / "runs" / "vnas" / "checkpoints" / "best.pt")
    from brats_seg.models.nas.genotype import validate_genotype

    assert vnas["model"]["kwargs"]["genotype"] == validate_genotype(genotype)  # the searched cells were trained
    md = (out / "results.md").read_text()
    assert "- residual connections (" in md and "- architecture search (" in md and "searched genotype given" in md
    per_case = read_rows(out / "per_case.csv")
    assert len(per_case) == 2 * len(models)
    summary = json.loads((out / "summary.json").read_text())
    assert not set(summary["train_cases"]) & set(summary["test_cases"])  # held-out cases never trained on


def test_transfer_smoke(synth_root, tmp_path):
    out = tmp_path / "transfer"
    assert main(["experiment", "transfer", "--data", str(synth_root), "--out", str(out), "--no-progress"]) == 0
    cfg = transfer.PRESETS["smoke"]
    expected = [(s, f, n) for n in cfg.sizes for s in cfg.strategies
                for f in ((False,) if s == "scratch" else cfg.freeze)]
    rows = check_outputs(out, len(expected), transfer.COLUMNS)
    assert [(r["strategy"], r["frozen"] == "True", int(r["n_train"])) for r in rows] == expected
    for row in rows:
        check_scores(row)
    assert all("Models Genesis" in r["note"] for r in rows if r["strategy"] == "pretrain")
    inflated = [r for r in rows if r["strategy"] == "inflated2d"]
    assert all(r["note"] == transfer.RANDOM_2D_NOTE for r in inflated)  # random weights are labeled as such
    assert all((out / r["init"]).is_file() for r in rows if r["strategy"] in ("synth2real", "inflated2d"))

    # a frozen arm's encoder kernels are exactly the inflated 2-D weights; the unfrozen arm's moved
    from brats_seg.checkpoint import load_checkpoint
    from brats_seg.training.weight_transfer import inflate_kernel

    state_2d = torch.load(out / "prep" / "random_resnet2d_NOT_PRETRAINED.pt", weights_only=True)
    n = max(cfg.sizes)
    frozen = load_checkpoint(out / "runs" / f"inflated2d-frozen-n{n}" / "checkpoints" / "best.pt")["state_dict"]
    free = load_checkpoint(out / "runs" / f"inflated2d-n{n}" / "checkpoints" / "best.pt")["state_dict"]
    key = "encoder.layer1.0.conv1.weight"
    want = inflate_kernel(state_2d["layer1.0.conv1.weight"], frozen[key].shape)
    assert torch.equal(frozen[key], want)
    assert not torch.equal(free[key], want)
    # the same for the self-supervised weights: a frozen encoder keeps what pretraining learned
    genesis = load_checkpoint(out / "prep" / "pretrain" / "checkpoints" / "last.pt")["state_dict"]
    frozen = load_checkpoint(out / "runs" / f"pretrain-frozen-n{n}" / "checkpoints" / "best.pt")["state_dict"]
    assert torch.equal(frozen[key], genesis[key])
    assert genesis["head.0.weight"].shape[0] == 4 and frozen["head.0.weight"].shape[0] == 3  # restoration head


def test_ensembles_smoke(synth_root, tmp_path):
    out = tmp_path / "ens"
    assert main(["experiment", "ensembles", "--data", str(synth_root), "--out", str(out), "--no-progress"]) == 0
    rows = check_outputs(out, 3 + 4, ensembles.COLUMNS)  # 3 members, 3 pairs + 1 triple
    members = [r for r in rows if r["kind"] == "member"]
    combos = [r for r in rows if r["kind"] == "ensemble"]
    assert [r["name"] for r in members] == ["unet3d-s0", "unet3d-s1", "resunet-s0"]
    assert sorted(int(r["n_members"]) for r in combos) == [2, 2, 2, 3]
    for row in rows:
        check_scores(row)
    best = {r["name"]: num(r["dice_mean"]) for r in members}
    for row in combos:
        parts = row["name"].split("+")
        assert num(row["best_member_dice_mean"]) == pytest.approx(max(best[p] for p in parts), abs=1e-5)
        assert num(row["gain"]) == pytest.approx(num(row["dice_mean"]) - num(row["best_member_dice_mean"]), abs=1e-5)
        assert -1.0 <= num(row["error_corr"]) <= 1.0
    assert len(read_rows(out / "pairs.csv")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prediction"]["n_combinations"] == 4
    assert "Does error correlation predict the gain?" in (out / "results.md").read_text()

    # run again into the same folder: finished members are reused (not retrained), results identical
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/checkpoints/best.pt")}
    again = ensembles.run(synth_root, out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/checkpoints/best.pt")} == mtimes
    assert [round(r["dice_mean"], 6) for r in again["rows"]] == [round(num(r["dice_mean"]), 6) for r in rows]


# --------------------------------------------------------------------------- pieces


def test_error_correlation_exact():
    a = np.zeros((3, 10), bool)
    a[:, :4] = True
    assert ensembles.error_correlation(a, a) == pytest.approx(1.0)
    assert ensembles.error_correlation(a, ~a) == pytest.approx(-1.0)
    b = a.copy()
    b[:, 4:6] = True  # errors 0..5 vs 0..3: phi = 4 / sqrt(4*6*6*4) ... computed by numpy
    assert ensembles.error_correlation(a, b) == pytest.approx(np.corrcoef(a[0], b[0])[0, 1])
    assert math.isnan(ensembles.error_correlation(a, np.zeros_like(a)))  # no errors: nothing to correlate


def test_verdict_needs_three_combinations():
    rows = [{"kind": "ensemble", "error_corr": c, "gain": g} for c, g in ((0.1, 0.05), (0.5, 0.0))]
    assert "Not measurable" in ensembles.verdict(rows)[0]
    rows.append({"kind": "ensemble", "error_corr": 0.3, "gain": 0.02})
    sentence, r, n = ensembles.verdict(rows)
    assert n == 3 and r < -0.9 and "as the ambiguity decomposition predicts" in sentence


def test_random_2d_weights_inflate_into_resnet_unet(tmp_path):
    from brats_seg.models.registry import build_model
    from brats_seg.training.weight_transfer import load_pretrained

    path = transfer.random_resnet_2d("resnet_unet", "tiny", tmp_path / "w2d.pt")
    state = torch.load(path, weights_only=True)
    assert state["conv1.weight"].shape[1] == 3 and state["conv1.weight"].ndim == 4  # RGB 2-D stem, torchvision-style
    report = load_pretrained(build_model("resnet_unet", preset="tiny"), path)
    assert report.inflated and not report.mismatched and set(report.unexpected) == {"fc.weight", "fc.bias"}
    with pytest.raises(ConfigError, match="no ResNet encoder"):
        transfer.random_resnet_2d("unet3d", "tiny", tmp_path / "x.pt")


def test_write_results_csv_and_markdown(tmp_path):
    rows = [{"model": "a", "dice_WT": 0.5, "ok": True}, {"model": "b", "dice_WT": float("nan"), "ok": False}]
    paths = write_results(tmp_path, rows, ("model", "dice_WT", "ok"), title="T", notes=["n1"],
                          sections={"S": "body"}, summary={"x": np.float32(1.5)})
    assert read_rows(paths["csv"]) == [{"model": "a", "dice_WT": "0.500000", "ok": "True"},
                                       {"model": "b", "dice_WT": "nan", "ok": "False"}]
    md = paths["md"].read_text()
    assert "# T" in md and "- n1" in md and "| a | 0.500 | yes |" in md and "| b | nan | no |" in md
    assert "## S" in md and json.loads(paths["summary"].read_text()) == {"x": 1.5}
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_split_is_deterministic_and_refuses_too_few_cases(synth_root):
    a, b = split_dataset(synth_root, DataPlan(n_test=2)), split_dataset(synth_root, DataPlan(n_test=2))
    assert [c.case_id for c in a.test] == [c.case_id for c in b.test] and len(a.train) == 4
    assert not {c.case_id for c in a.train} & {c.case_id for c in a.test}
    with pytest.raises(ConfigError, match="needs at least 7"):
        split_dataset(synth_root, DataPlan(n_test=6))


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["experiment", "architectures", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]
    assert main(["experiment", "transfer", "--out", str(tmp_path / "o"), "--genotype", "g.json"]) == 2
    assert "architectures experiment only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", "nas", "--out", str(tmp_path / "o")])  # unknown experiment: argparse usage error
    with pytest.raises(ConfigError, match="no preset"):
        architectures.run(None, tmp_path / "o", preset="huge")


@pytest.mark.parametrize("module", [architectures, transfer, ensembles], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_full_presets_build_every_model_for_their_patch(module):
    """The GPU presets cannot run here; at least every network they name builds (on the meta device, no memory)
    at their size and takes their patch."""
    from brats_seg.models.registry import build_model, list_models

    cfg = module.PRESETS["full"]
    names = {"architectures": lambda: cfg.models or list_models(), "transfer": lambda: (cfg.model,),
             "ensembles": lambda: tuple(m for m, _ in cfg.members)}[module.__name__.rsplit(".", 1)[-1]]()
    assert cfg.budget.preset == "base" and cfg.data.n_test >= 10
    for name in names:
        with torch.device("meta"):
            net = build_model(name, preset=cfg.budget.preset, deep_supervision=True)
        assert all(p % net.size_divisor == 0 for p in cfg.budget.patch), name
        assert getattr(net, "fixed_input_size", None) in (None, tuple(cfg.budget.patch)), name
