"""``brats-seg train --time-budget``: the run ends inside its budget with the learning rate decayed to ~0,
and a run killed and resumed continues the same clock and schedule."""

from __future__ import annotations

import csv
import sys

import pytest
import torch
from trainhelp import kill_when, start_process, write_toy_cache

from brats_seg.cli import main
from brats_seg.training import schedule as schedule_module
from brats_seg.training.schedule import TimeBudget, lr_factor_at

BUDGET_MINUTES = 0.25
LR = 0.01


def _rows(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_time_budget_through_the_cli_killed_and_resumed(tmp_path):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=4)
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--no-progress"]
    first = [sys.executable, "-m", "brats_seg.cli", *args, str(cache), "--model", "unet3d", "--preset", "tiny",
             "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "4", "--folds", "2", "--workers", "0",
             "--threads", "1", "--lr", str(LR), "--time-budget", str(BUDGET_MINUTES)]
    proc = start_process(first)
    assert kill_when(proc, lambda: (run / "log.csv").is_file() and len(_rows(run)) >= 2), proc.stdout.read()[-2000:]
    before = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["training"]["scheduler"]
    assert 0 < before["elapsed"] < BUDGET_MINUTES * 60 and before["budget"] == BUDGET_MINUTES * 60

    assert main([*args, "--resume"]) == 0  # the budget comes back from config.yaml

    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    elapsed = [float(r["elapsed"]) for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[-1] > before["elapsed"]
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["training"]["scheduler"]
    budget = BUDGET_MINUTES * 60
    # inside the budget (loosely: this is about correctness, not timing) and not stopped far too early
    assert 0.5 * budget <= last["elapsed"] <= budget + 5.0, last
    assert set(last["costs"]) == {"validate", "save"}
    # one schedule over both sessions: the lr never goes back up, and ends near 0
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0.3 * LR and lrs[-1] < 0.1 * LR, lrs
    assert int(rows[-1]["steps"]) <= 4 and rows[-1]["val_dice_WT"]  # the last epoch is validated

    # resuming a finished budget run trains no more
    assert main([*args, "--resume"]) == 0 and len(_rows(run)) == len(rows)


def test_time_budget_clock(monkeypatch):
    """The budget's rules on a fake clock: lr on the fraction of (budget - reserve), stop when the time
    left is the reserve, and a resumed budget continues from the stored elapsed time."""
    now = [100.0]
    monkeypatch.setattr(schedule_module.time, "perf_counter", lambda: now[0])
    budget = TimeBudget(60.0)
    assert budget.lr_at(0) == 1.0 and not budget.finished(0)
    now[0] += 20
    for kind, cost in (("validate", 4.0), ("save", 6.0), ("save", 1.0)):
        budget.measure(kind, cost)
    assert budget.reserve == 10.0  # the largest cost of each
    assert budget.lr_at(1) == pytest.approx(lr_factor_at(20 / 50))
    now[0] += 29
    assert not budget.stop_early()
    now[0] += 1
    assert budget.stop_early() and budget.finished(3) and budget.lr_at(2) == 0.0
    state = budget.state()
    assert state == {"elapsed": 50.0, "budget": 60.0, "costs": {"validate": 4.0, "save": 6.0}}
    now[0] += 1000  # a later session: the time in between does not count
    assert TimeBudget(60.0, state=state).finished(0)
    longer = TimeBudget(120.0, state=state)
    assert not longer.finished(0) and longer.lr_at(0) == pytest.approx(lr_factor_at(50 / 110))


def test_time_fraction_schedules():
    assert lr_factor_at(0.0) == 1.0 and lr_factor_at(1.0) == 0.0 and lr_factor_at(1.5) == 0.0
    assert lr_factor_at(0.5) == pytest.approx(0.5**0.9)
    assert lr_factor_at(0.5, schedule="cosine") == pytest.approx(0.5)
    assert lr_factor_at(0.05, warmup=0.1) == pytest.approx(0.5) and lr_factor_at(0.1, warmup=0.1) == 1.0
    assert lr_factor_at(0.55, warmup=0.1) == pytest.approx(0.5**0.9)
