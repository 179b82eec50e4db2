"""The suite is seeded: every test starts from the same generator states, and a failure names its seeds."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parent


def test_generators_start_seeded(seeded_rngs):
    seed = seeded_rngs  # the autouse fixture of tests/conftest.py, which yields the seed it set
    assert random.random() == random.Random(seed).random()
    assert np.random.rand() == np.random.RandomState(seed).rand()
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(seed)))


def test_failure_report_names_the_seeds(tmp_path):
    for name in ("conftest.py", "helpers.py"):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / "test_fails.py").write_text(
        "import torch\n\ndef test_fails():\n    torch.manual_seed(7)\n    assert torch.rand(1).item() < 0\n")
    env = {**os.environ, "BRATS_SEG_TEST_SEED": "5"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "random seeds" in run.stdout and "started from seed 5" in run.stdout
    assert "last torch seed set: 7" in run.stdout and "BRATS_SEG_TEST_SEED=5 pytest" in run.stdout
