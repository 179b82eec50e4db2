"""Helpers for the training tests: a tiny preprocessing cache written directly (no NIfTI round trip)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from helpers import tiny_volumes


def write_toy_cache(out: Path, n: int = 4, shape=(24, 24, 20)) -> list[str]:
    """``n`` cases of :func:`helpers.tiny_volumes` (brats2021 labels) in the preprocess cache format."""
    out.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        vols, label = tiny_volumes(shape=shape, seed=i)
        image = np.stack(list(vols.values())).astype(np.float32)
        brain = image[0] != 0
        image = np.where(brain, (image - image[:, brain].mean(1)[:, None, None, None])
                         / image[:, brain].std(1)[:, None, None, None], 0).astype(np.float32)
        cid = f"toy{i:03d}"
        np.save(out / f"{cid}_image.npy", image)
        np.save(out / f"{cid}_label.npy", label.astype(np.uint8))
        (out / f"{cid}.json").write_text(json.dumps({"case_id": cid, "label_scheme": "brats2021",
                                                     "channels": ["t1n", "t1c", "t2w", "t2f"]}))
        ids.append(cid)
    (out / "dataset.json").write_text(json.dumps({"config": {}, "channels": ["t1n", "t1c", "t2w", "t2f"],
                                                  "cases": ids}))
    return ids
