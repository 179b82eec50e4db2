"""``--recipe cpu`` on real scans: its settings, and the postprocessing it records applied by ``brats-seg predict``."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import yaml
from scipy import ndimage

from brats_seg.cli import main
from brats_seg.inference.postprocess import remove_small_components
from brats_seg.training.train_config import TrainConfig


def test_cpu_recipe_settings():
    cfg = TrainConfig(recipe="cpu", data="d", out="o")
    assert cfg.time_budget == 25.0 and cfg.model == "unet3d" and cfg.patch == (64, 64, 64)
    assert cfg.preprocess.spacing == (2.0, 2.0, 2.0) and cfg.folds == 1 and not cfg.augment
    assert cfg.postprocess.wt_component_fraction == 0.1
    assert main(["train", "--list-recipes"]) == 0


def wt_components(path) -> tuple[np.ndarray, int]:
    labels = np.asarray(nib.load(str(path)).dataobj)
    return labels, ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))[1]


@pytest.mark.slow
def test_cpu_recipe_records_its_wt_rule_and_predict_applies_it(shared_data, tmp_path, capsys):
    """Train with ``--recipe cpu`` (a few seconds instead of 25 minutes) on one real case, predict another:
    the labels keep exactly the rule-free prediction's whole-tumor components of at least 10 % of its
    largest; a flag turns the recorded rule off."""
    cases = sorted((shared_data / "brats2018").iterdir())
    data = tmp_path / "data"
    data.mkdir()
    (data / cases[0].name).symlink_to(cases[0])
    run = tmp_path / "run"
    assert main(["train", str(data), "--recipe", "cpu", "--out", str(run), "--time-budget", "0.02",
                 "--steps-per-epoch", "2", "--patch", "32", "--threads", "1", "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["postprocess"]["wt_component_fraction"] == 0.1
    ckpt = run / "checkpoints" / "last.pt"
    test_case = cases[1]
    common = [str(test_case), "--model", str(ckpt), "--no-progress", "--threads", "1", "--threshold", "0.3"]
    assert main(["predict", *common, "--out", str(tmp_path / "pp")]) == 0
    assert main(["predict", *common, "--out", str(tmp_path / "raw"), "--largest-wt", "0"]) == 0
    sidecar = json.loads((tmp_path / "pp" / f"{test_case.name}.json").read_text())
    assert sidecar["settings"]["postprocess"]["wt_component_fraction"] == 0.1
    assert sidecar["settings"]["postprocess"]["threshold"] == 0.3  # a flag changes one setting
    off = json.loads((tmp_path / "raw" / f"{test_case.name}.json").read_text())
    assert off["settings"]["postprocess"]["wt_component_fraction"] == 0.0
    kept, n_kept = wt_components(tmp_path / "pp" / f"{test_case.name}.nii.gz")
    raw, n_raw = wt_components(tmp_path / "raw" / f"{test_case.name}.nii.gz")
    assert n_kept >= 1 and n_raw >= n_kept
    expected = np.where(remove_small_components(raw > 0, fraction=0.1), raw, 0)
    np.testing.assert_array_equal(kept, expected)
    assert set(np.unique(kept).tolist()) <= {0, 1, 2, 4}  # the input's brats2018-era labels
