"""Issue 20: a checkpoint written before outputs existed (no ``outputs`` key) predicts a real case exactly as the
WT/TC/ET code did: its labels are ``regions_to_labels`` of the cleaned thresholded probabilities, bit for bit,
with and without the postprocessing rules and in another scheme; recording default outputs changes nothing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint
from brats_seg.conventions import regions_to_labels
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.inference.postprocess import PostprocessConfig, postprocess_regions
from brats_seg.inference.predictor import Predictor, paste
from brats_seg.models.registry import build_model
from brats_seg.outputs import default_outputs

CASE = "BraTS2021_00002"


@pytest.mark.realdata
def test_old_checkpoint_predicts_bitwise_as_before(shared_data, tmp_path):
    src = shared_data / "brats2021" / CASE
    box = (slice(60, 140), slice(70, 150), slice(40, 100))
    (tmp_path / CASE).mkdir()
    for f in src.iterdir():
        img = nib.load(str(f))
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[box], img.affine), str(tmp_path / CASE / f.name))
    torch.manual_seed(0)
    net = build_model("unet3d", preset="tiny", out_channels=3)
    common = dict(model_name="unet3d", model_kwargs=net.build_kwargs, label_scheme="brats2021",
                  patch_size=(32, 32, 32), spacing=(1.0, 1.0, 1.0))
    old = make_checkpoint(net, **common)
    assert "outputs" not in old
    new = make_checkpoint(net, **common, outputs=default_outputs("brats2021"))
    vol = load_case(discover_cases(tmp_path)[0])
    for rule, scheme in ((PostprocessConfig(), None),
                         (PostprocessConfig(min_component_voxels=50, et_min_voxels=200), "brats2023")):
        pred = Predictor([old], device="cpu", postprocess=rule, label_scheme=scheme, warn=False).predict(vol)
        regions, _ = postprocess_regions(pred.box_probabilities > rule.threshold, rule)
        expected = paste(regions_to_labels(regions, scheme or "brats2021"), pred.box, pred.labels.shape)
        assert pred.labels.dtype == expected.dtype and np.array_equal(pred.labels, expected)
        assert "model_outputs" not in pred.info
        again = Predictor([new], device="cpu", postprocess=rule, label_scheme=scheme, warn=False).predict(vol)
        assert np.array_equal(again.labels, pred.labels)
        assert np.array_equal(again.box_probabilities, pred.box_probabilities)
        assert pred.labels.any()
