"""README "Prediction notes" through `brats-seg predict`: postprocessing is off by default and each rule is a flag;
probability maps are float32 (H, W, D, 3) in the order WT, TC, ET; nothing is labelled outside the brain's box."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.models.registry import build_model
from helpers import tiny_volumes, write_nifti

BIAS = (2.0, 1.0, 0.5)  # constant region logits: WT, TC, ET all above the threshold everywhere


@pytest.fixture(scope="module")
def constant_checkpoint(tmp_path_factory):
    """A tiny nnU-Net whose output is the constant logits BIAS (every weight zero)."""
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
        convs[-1].bias.copy_(torch.tensor(BIAS))
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16))
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "constant.pt")


@pytest.fixture
def case(tmp_path):
    vols, _ = tiny_volumes()
    for name, v in vols.items():
        write_nifti(tmp_path / "data" / "BraTS2021_00001" / f"BraTS2021_00001_{name}.nii.gz", v)
    return tmp_path / "data" / "BraTS2021_00001", vols["t1"] != 0


def _predict(case, ckpt, out, *flags):
    assert main(["predict", str(case), "--model", str(ckpt), "--out", str(out), "--no-progress", *flags]) == 0
    labels = np.asanyarray(nib.load(str(out / "BraTS2021_00001.nii.gz")).dataobj)
    return labels, json.loads((out / "BraTS2021_00001.json").read_text())


def test_postprocessing_is_off_by_default_and_each_rule_is_a_flag(case, constant_checkpoint, tmp_path):
    folder, brain = case
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(brain))
    labels, _ = _predict(folder, constant_checkpoint, tmp_path / "plain", "--probabilities")
    inside = np.zeros(brain.shape, bool)
    inside[box] = True
    assert (labels[inside] == 4).all() and (labels[~inside] == 0).all()  # ET in the brain's box, nothing outside
    probs = nib.load(str(tmp_path / "plain" / "BraTS2021_00001_probabilities.nii.gz"))
    assert probs.shape == (*brain.shape, 3) and probs.get_data_dtype() == np.float32
    centre = np.asarray(probs.dataobj)[12, 12, 10]
    np.testing.assert_allclose(centre, 1 / (1 + np.exp(-np.array(BIAS))), atol=1e-5)  # WT, TC, ET in that order

    n_et = int(inside.sum())
    labels, side = _predict(folder, constant_checkpoint, tmp_path / "et", "--et-min-voxels", str(n_et + 1))
    assert (labels[inside] == 1).all()  # ET below the volume rule becomes core (brats2021 label 1)
    labels, _ = _predict(folder, constant_checkpoint, tmp_path / "et_kept", "--et-min-voxels", str(n_et))
    assert (labels[inside] == 4).all()
    labels, _ = _predict(folder, constant_checkpoint, tmp_path / "cc", "--min-component", str(n_et + 1))
    assert not labels.any()  # the one whole-tumor component is smaller than the limit
    assert "et_min_voxels" in json.dumps(side["settings"])
