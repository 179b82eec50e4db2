"""Learning-rate schedules, k-fold splits, RNG state round trip, log/curves writing."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from brats_seg.errors import ConfigError
from brats_seg.training.history import plot_curves, read_log, write_log
from brats_seg.training.schedule import lr_factor
from brats_seg.training.splits import fold_split, make_splits
from brats_seg.training.state import rng_state, set_rng_state


def test_schedules():
    assert lr_factor(0, 100) == 1.0 and lr_factor(100, 100) == 0.0
    assert lr_factor(50, 100) == pytest.approx(0.5**0.9)
    assert lr_factor(50, 100, schedule="cosine") == pytest.approx(0.5)
    warm = [lr_factor(s, 100, warmup=10) for s in range(12)]
    assert warm[0] == pytest.approx(0.1) and warm[9] == 1.0 and warm[:10] == sorted(warm[:10])
    poly = [lr_factor(s, 100, warmup=10) for s in range(10, 101)]
    assert poly == sorted(poly, reverse=True)


def test_splits_are_deterministic_disjoint_and_cover_every_case():
    ids = [f"c{i}" for i in range(11)]
    a, b = make_splits(ids, 5, seed=3), make_splits(list(reversed(ids)), 5, seed=3)
    assert a == b
    assert sorted(c for s in a for c in s["val"]) == sorted(ids)
    for s in a:
        assert not set(s["val"]) & set(s["train"]) and len(s["val"]) + len(s["train"]) == 11
    assert make_splits(ids, 5, seed=4) != a
    assert fold_split(ids, 2, 5, seed=3) == a[2]
    assert make_splits(ids, 1) == [{"train": sorted(ids), "val": []}]
    with pytest.raises(ConfigError, match="cannot make 12 folds"):
        make_splits(ids, 12)


def test_rng_state_round_trip_is_weights_only(tmp_path):
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save(state, tmp_path / "s.pt")
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_log_and_curves(tmp_path):
    hist = [{"epoch": 1, "train_loss": 1.0, "lr": 0.01},
            {"epoch": 2, "train_loss": 0.5, "lr": 0.005, "val_dice_WT": 0.5, "val_dice_TC": 0.4, "val_dice_ET": 0.3}]
    write_log(tmp_path / "log.csv", hist)
    rows = read_log(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0]["val_dice_WT"] == "" and rows[1]["val_dice_WT"] == "0.5"
    plot_curves(tmp_path / "curves.png", hist)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
