"""What ``brats-seg train`` records about its data: the output label scheme (an error when the training
cases mix schemes and none is given) and the training spacing in the checkpoint."""

from __future__ import annotations

import pytest
import torch
from trainhelp import write_toy_cache

from brats_seg.checkpoint import load_checkpoint
from brats_seg.cli import main

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "2",
        "--workers", "0", "--threads", "1", "--no-progress"]


def test_mixed_label_schemes_need_an_output_scheme(tmp_path, capsys):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4, schemes=["brats2021", "brats2023", "brats2021", "brats2021"])
    args = ["train", str(cache), *TINY, "--epochs", "1", "--folds", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "several label schemes: brats2021 (3 cases), brats2023 (1 case)" in err[0], err
    assert "--output-scheme" in err[0]
    assert main([*args, "--out", str(tmp_path / "b"), "--output-scheme", "brats2023"]) == 0
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["label_scheme"] == "brats2023"


def test_checkpoint_spacing_is_the_median_of_the_training_cases(tmp_path):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4, spacing=[(1.0, 1.0, 1.0), (1.0, 0.9, 2.0), (1.0, 0.9, 3.0), (2.0, 1.0, 1.0)])
    run = tmp_path / "run"
    assert main(["train", str(cache), "--out", str(run), *TINY, "--epochs", "1", "--folds", "1"]) == 0
    raw = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert raw["format"] == 2 and raw["spacing"] == pytest.approx([1.0, 0.95, 1.5])

