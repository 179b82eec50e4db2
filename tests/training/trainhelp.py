"""Helpers for the training tests: a tiny preprocessing cache written directly (no NIfTI round trip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import tiny_volumes, write_cache_entries


def write_toy_cache(out: Path, n: int = 4, shape=(24, 24, 20)) -> list[str]:
    """``n`` cases of :func:`helpers.tiny_volumes` (brats2021 labels) in the preprocess cache format."""
    cases = {}
    for i in range(n):
        vols, label = tiny_volumes(shape=shape, seed=i)
        image = np.stack(list(vols.values())).astype(np.float32)
        brain = image[0] != 0
        image = np.where(brain, (image - image[:, brain].mean(1)[:, None, None, None])
                         / image[:, brain].std(1)[:, None, None, None], 0).astype(np.float32)
        cases[f"toy{i:03d}"] = (image, label.astype(np.uint8), "brats2021")
    return write_cache_entries(out, cases)
