"""A new site through the CLI on real shared cases cropped small: ``--recipe finetune`` starts from the
source's weights (its first-step loss is the source's loss on that batch) and records its provenance;
``brats-seg adapt`` (TENT) on real SSA cases changes only the normalization layers' affine parameters
and writes a checkpoint that loads, predicts and records what it did."""

from __future__ import annotations

import pytest
import torch
from sitehelp import crop_cases, first_step_losses

from brats_seg.checkpoint import load_checkpoint, model_from_checkpoint
from brats_seg.cli import main

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--workers", "0",
        "--threads", "1", "--no-progress", "--folds", "1"]


@pytest.fixture(scope="module")
def sites(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    source = crop_cases(shared_data, "brats2021", 2, root / "brats2021")
    target = crop_cases(shared_data, "ssa", 2, root / "ssa")
    run = root / "source"
    assert main(["train", str(source), "--out", str(run), *TINY, "--epochs", "1", "--steps-per-epoch", "2"]) == 0
    return source, target, run / "checkpoints" / "last.pt"


def test_finetune_starts_from_the_source_weights(sites, tmp_path, monkeypatch, capsys):
    _, target, source_ckpt = sites
    # the source network's loss on the first batch, before any update, and the run's
    first = first_step_losses(monkeypatch, lambda: model_from_checkpoint(load_checkpoint(source_ckpt)))
    run = tmp_path / "ft"
    # the recipe's network is the source's: --model/--patch given here are replaced (and said)
    assert main(["train", str(target), "--out", str(run), "--recipe", "finetune", "--init-from", str(source_ckpt),
                 "--model", "nnunet", "--patch", "32", "--time-budget", "0.02", "--steps-per-epoch", "1",
                 "--threads", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "its model, model_kwargs, patch" in out and "loaded" in out
    assert first["run"] == pytest.approx(first["source"], rel=1e-5, abs=1e-6)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    config = ckpt["provenance"]["config"]
    assert config["init_from"] == str(source_ckpt) and config["follow_init"] and config["lr"] == 1e-4
    assert config["freeze_encoder_epochs"] == 0 and config["epochs"] == 2 and config["steps_per_epoch"] == 1  # flag
    assert ckpt["model"]["name"] == "unet3d" and ckpt["patch_size"] == [16] * 3
    assert ckpt["intensity_range"]["cases"] == 2  # the target cases' range, recorded at train time
    model_from_checkpoint(ckpt)


def test_finetune_needs_a_source(sites, tmp_path):
    _, target, _ = sites
    assert main(["train", str(target), "--out", str(tmp_path / "x"), "--recipe", "finetune", "--no-progress"]) == 2


def test_adapt_tent_on_real_ssa_cases(sites, tmp_path, capsys):
    _, target, source_ckpt = sites
    out = tmp_path / "tent.pt"
    assert main(["adapt", str(source_ckpt), str(target), "--out", str(out), "--steps", "3", "--lr", "0.01"]) == 0
    assert "mean entropy" in capsys.readouterr().err
    before, after = load_checkpoint(source_ckpt), load_checkpoint(out)
    record = after["provenance"]["adaptation"]
    assert record["method"] == "tent" and record["steps"] == 3 and len(record["cases"]) == 2
    assert record["source"] == str(source_ckpt)
    norms = {n for n, m in model_from_checkpoint(before).named_modules() if isinstance(m, torch.nn.InstanceNorm3d)}
    changed = {k for k in before["state_dict"] if not torch.equal(before["state_dict"][k], after["state_dict"][k])}
    assert changed and all(k.rsplit(".", 1)[0] in norms and k.endswith((".weight", ".bias")) for k in changed)
    assert record["parameters"] == sum(before["state_dict"][k].numel() for k in before["state_dict"]
                                       if k.rsplit(".", 1)[0] in norms)
    assert after["intensity_range"]["cases"] == 4  # the source's two training cases and the two adapted to
    assert main(["predict", str(target), "--model", str(out), "--out", str(tmp_path / "pred"), "--no-progress"]) == 0
    assert main(["adapt", str(source_ckpt), str(target), "--out", str(source_ckpt)]) == 2  # never over its input
