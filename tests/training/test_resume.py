"""Never lose work: a training process killed at random moments (also inside a checkpoint write)
resumes to the same final weights as an uninterrupted run, with a log free of gaps and duplicates."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from trainhelp import kill_when, start_process, write_toy_cache

EPOCHS = 4
DRIVER = '''
import sys, time, torch
_save = torch.save
def slow_save(obj, f, *args, **kwargs):  # a slow disk: the temporary file exists for a while
    _save(obj, f, *args, **kwargs)
    time.sleep(float(sys.argv[1]))
torch.save = slow_save
from brats_seg.cli import main
sys.exit(main(sys.argv[2:]))
'''


def _command(driver: Path, cache: Path, run: Path, delay: float, resume: bool) -> list[str]:
    args = ["train", str(cache), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
            "--batch-size", "2", "--steps-per-epoch", "2", "--epochs", str(EPOCHS), "--folds", "2", "--workers", "0",
            "--threads", "1", "--lr", "0.01", "--no-progress", "--seed", "3"]
    return [sys.executable, str(driver), str(delay), *args, *(["--resume"] if resume else [])]


def _epochs_in_log(run: Path) -> list[int]:
    with open(run / "log.csv") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_kill_at_random_moments_and_resume(tmp_path):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    ckpts = tmp_path / "run" / "checkpoints"
    run = tmp_path / "run"

    # 1. killed inside a checkpoint write: the temporary file of last.pt exists, the rename has not happened
    proc = start_process(_command(driver, cache, run, 1.0, resume=False))
    assert kill_when(proc, lambda: any(ckpts.glob(".last.pt.tmp*")))
    # 2.-4. resumed and killed at random moments
    rng = np.random.default_rng(0)
    kills = 1
    for _ in range(2):
        proc = start_process(_command(driver, cache, run, 0.2, resume=True))
        t_kill = time.monotonic() + rng.uniform(2.0, 6.0)
        kills += kill_when(proc, lambda t=t_kill: time.monotonic() > t)
        if (ckpts / "last.pt").is_file():
            state = torch.load(ckpts / "last.pt", weights_only=True)
            assert _epochs_in_log(run) == list(range(1, state["training"]["epoch"] + 1))
    assert kills >= 2
    # 5. resume to the end
    proc = start_process(_command(driver, cache, run, 0.0, resume=True))
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out[-2000:]

    assert _epochs_in_log(run) == list(range(1, EPOCHS + 1))
    last = torch.load(ckpts / "last.pt", weights_only=True)
    best = torch.load(ckpts / "best.pt", weights_only=True)
    assert last["training"]["epoch"] == EPOCHS and 1 <= best["provenance"]["epoch"] <= EPOCHS
    assert not list(ckpts.glob(".*tmp*"))

    # the interrupted run ends exactly where an uninterrupted one does
    ref = tmp_path / "ref"
    proc = start_process(_command(driver, cache, ref, 0.0, resume=False))
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out[-2000:]
    ref_last = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    for k, v in ref_last["state_dict"].items():
        assert torch.equal(v, last["state_dict"][k]), k
    assert [r["train_loss"] for r in ref_last["training"]["history"]] == \
        [r["train_loss"] for r in last["training"]["history"]]
