"""Modality dropout keeps kill-and-resume exact: a run killed mid-epoch and resumed ends with the weights and
losses of an uninterrupted run (the dropout draws are a function of the sample index, not of process state)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from trainhelp import kill_when, start_process, write_toy_cache

EPOCHS = 4


def _command(cache: Path, run: Path, resume: bool) -> list[str]:
    args = ["train", str(cache), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
            "--batch-size", "2", "--steps-per-epoch", "3", "--epochs", str(EPOCHS), "--folds", "2", "--workers", "1",
            "--threads", "1", "--lr", "0.01", "--no-progress", "--seed", "5", "--modality-dropout", "0.7"]
    return [sys.executable, "-m", "brats_seg.cli", *args, *(["--resume"] if resume else [])]


def _epoch_done(run: Path) -> int:
    path = run / "checkpoints" / "last.pt"
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, weights_only=True)["training"]["epoch"])
    except Exception:  # caught between write and rename on a slow disk: not yet complete
        return 0


@pytest.mark.slow
def test_resume_with_dropout_is_exact(tmp_path):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4)
    run, ref = tmp_path / "run", tmp_path / "ref"
    proc = start_process(_command(cache, run, resume=False))
    assert kill_when(proc, lambda: _epoch_done(run) >= 2), "finished before it could be killed"
    assert _epoch_done(run) < EPOCHS
    proc = start_process(_command(cache, run, resume=True))
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out[-2000:]
    proc = start_process(_command(cache, ref, resume=False))
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out[-2000:]

    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ref_last = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    assert last["training"]["epoch"] == EPOCHS and len(last["trained_subsets"]) == 15
    for k, v in ref_last["state_dict"].items():
        assert torch.equal(v, last["state_dict"][k]), k
    assert [r["train_loss"] for r in ref_last["training"]["history"]] == \
        [r["train_loss"] for r in last["training"]["history"]]
