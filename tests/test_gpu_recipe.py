"""``benchmarks/gpu_recipe.py --dry-run`` (issue 12 item 5): the GPU comparison's code path, small, on the CPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_recipe  # noqa: E402


@pytest.mark.slow
def test_gpu_recipe_dry_run_trains_predicts_and_sets_monai_beside(shared_data, tmp_path, capsys):
    assert gpu_recipe.main(["--dry-run", "--data", str(shared_data), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| brats_seg --recipe cpu, 0.05 min on cpu |" in text
    assert "| MONAI tutorial SegResNet, 5 min on an H100 (reference README) | 0.813 | 0.487 | 0.458 |" in text
    assert "failed cases: none" in text and '"wt_component_fraction": 0.1' in text and "target:" in text
    assert (tmp_path / "predictions").is_dir() and (tmp_path / "gpu_recipe.md").read_text().strip() in text
    assert len(list((tmp_path / "train").iterdir())) == 1  # the dry run trains on one case


def test_gpu_recipe_defaults():
    args = gpu_recipe.parse_args([])
    assert args.minutes == 5.0 and args.device == "cuda" and args.recipe == "cpu"
    assert gpu_recipe.parse_args(["--dry-run"]).device == "cpu"
