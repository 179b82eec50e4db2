"""Deterministic k-fold splits of case ids, saved in the run folder as ``splits.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import write_text


def make_splits(case_ids: Sequence[str], folds: int, seed: int = 0) -> list[dict[str, list[str]]]:
    """``folds`` splits ``{"train": [...], "val": [...]}``: the sorted ids shuffled by ``seed`` and dealt
    round-robin into folds (every case is validated exactly once). ``folds=1`` trains on all, validates on none."""
    ids = sorted(case_ids)
    if folds < 1:
        raise ConfigError(f"--folds must be >= 1, got {folds}")
    if folds == 1:
        return [{"train": ids, "val": []}]
    if len(ids) < folds:
        raise ConfigError(f"{len(ids)} cases cannot make {folds} folds; use --folds {max(len(ids), 1)} or fewer")
    order = np.random.default_rng(seed).permutation(len(ids))
    val_sets = [sorted(ids[i] for i in order[k::folds]) for k in range(folds)]
    return [{"train": [c for c in ids if c not in set(v)], "val": v} for v in val_sets]


def fold_split(case_ids: Sequence[str], fold: int, folds: int, seed: int = 0) -> dict[str, list[str]]:
    """The ``fold``-th split (0-based) of :func:`make_splits`."""
    if not 0 <= fold < folds:
        raise ConfigError(f"--fold must be in 0..{folds - 1}, got {fold}")
    return make_splits(case_ids, folds, seed)[fold]


def save_splits(path: str | Path, splits: list[dict[str, list[str]]], seed: int) -> None:
    """Write ``{"seed", "folds", "splits"}`` as JSON (atomically)."""
    write_text(path, json.dumps({"seed": seed, "folds": len(splits), "splits": splits}, indent=1))
