"""README "preprocess": `brats-seg preprocess --n4` removes a bias field (N4 through SimpleITK) from the cached
images; without it the cache keeps the bias."""

from __future__ import annotations

import json

import numpy as np

from brats_seg.cli import main
from helpers import write_nifti

SHAPE = (40, 40, 32)


def test_n4_through_the_cli(tmp_path):
    idx = np.indices(SHAPE).astype(np.float32)
    brain = sum(((idx[i] - (n - 1) / 2) / (n * 0.42)) ** 2 for i, n in enumerate(SHAPE)) <= 1
    bias = np.exp(0.4 * (idx[0] / SHAPE[0] - 0.5))  # smooth multiplicative bias along axis 0
    rng = np.random.default_rng(0)
    for name in ("t1", "t1ce", "t2", "flair"):
        v = np.where(brain, (200 + 5 * rng.standard_normal(SHAPE)) * bias, 0).astype(np.float32)
        write_nifti(tmp_path / "data" / "BraTS2021_00001" / f"BraTS2021_00001_{name}.nii.gz", v)

    def trend(cache):  # correlation of intensity with the biased axis, inside the brain
        image = np.load(cache / "BraTS2021_00001_image.npy")
        m = image[0] != 0
        return abs(np.corrcoef(np.indices(m.shape)[0][m], image[0][m])[0, 1]), cache

    args = ["preprocess", str(tmp_path / "data"), "--normalization", "none", "--quiet", "--workers", "1"]
    assert main([*args[:2], str(tmp_path / "plain"), *args[2:]]) == 0
    assert main([*args[:2], str(tmp_path / "n4"), *args[2:], "--n4"]) == 0
    plain, _ = trend(tmp_path / "plain")
    corrected, cache = trend(tmp_path / "n4")
    assert plain > 0.8 and corrected < 0.5 * plain, (plain, corrected)
    assert json.loads((cache / "dataset.json").read_text())["config"]["n4"] is True
