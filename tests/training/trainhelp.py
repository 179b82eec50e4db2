"""Helpers for the training tests: a tiny preprocessing cache written directly (no NIfTI round trip), and
training processes started and killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from brats_seg.conventions import convert_labels
from helpers import tiny_volumes, write_cache_entries


def write_toy_cache(out: Path, n: int = 4, shape=(24, 24, 20), spacing=(1.0, 1.0, 1.0),
                    schemes: list[str] | None = None) -> list[str]:
    """``n`` cases of :func:`helpers.tiny_volumes` in the preprocess cache format.

    ``spacing``: one voxel spacing for every case, or a list of one per case; ``schemes``: the
    label scheme of each case (default brats2021; the labels are converted to it)."""
    spacings = [spacing] * n if np.ndim(spacing) == 1 else list(spacing)
    schemes = schemes or ["brats2021"] * n
    cases = {}
    for i in range(n):
        vols, label = tiny_volumes(shape=shape, seed=i)
        image = np.stack(list(vols.values())).astype(np.float32)
        brain = image[0] != 0
        image = np.where(brain, (image - image[:, brain].mean(1)[:, None, None, None])
                         / image[:, brain].std(1)[:, None, None, None], 0).astype(np.float32)
        cases[f"toy{i:03d}"] = (image, convert_labels(label, "brats2021", schemes[i]).astype(np.uint8), schemes[i])
    return write_cache_entries(out, cases, spacings=spacings)


def start_process(cmd: list[str]) -> subprocess.Popen:
    """``cmd`` with one OpenMP thread, stdout and stderr together."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def kill_when(proc: subprocess.Popen, condition, timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` as soon as ``condition()`` holds; False if it finished first."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False
