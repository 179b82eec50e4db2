"""The same ``brats-seg train`` command under torchrun: DDP on CPU with gloo and 2 processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import torch
from trainhelp import write_toy_cache


def test_train_under_torchrun_two_processes(tmp_path):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "brats_seg.cli", "train", str(cache), "--out", str(run), "--model", "unet3d", "--preset", "tiny",
           "--patch", "16", "--batch-size", "1", "--steps-per-epoch", "2", "--epochs", "2", "--folds", "2",
           "--workers", "0", "--threads", "1", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "DDP: 2 processes (gloo)" in out
    assert out.count("trained 2 epochs") == 1  # rank 0 reports, once
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(r["val_dice_WT"] for r in rows)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert last["training"]["epoch"] == 2
    assert not any(k.startswith("module.") for k in last["state_dict"])  # saved unwrapped
