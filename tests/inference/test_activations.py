import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint
from brats_seg.data.reading.cases import CaseVolumes
from brats_seg.data.reading.image_io import Image
from brats_seg.errors import CheckpointError
from brats_seg.inference.activations import get_activation, softmax_to_regions
from brats_seg.inference.predictor import Predictor
from brats_seg.models.registry import build_model
from helpers import tiny_affine, tiny_volumes


def test_softmax_regions_are_nested_sums():
    logits = torch.randn(2, 4, 5, 5, 5)
    p = torch.softmax(logits, 1)
    r = softmax_to_regions(logits)
    torch.testing.assert_close(r[:, 0], p[:, 1:].sum(1))
    torch.testing.assert_close(r[:, 1], p[:, 2:].sum(1))
    assert (r[:, 2] <= r[:, 1] + 1e-6).all() and (r[:, 1] <= r[:, 0] + 1e-6).all()
    with pytest.raises(CheckpointError, match="valid: sigmoid, softmax"):
        get_activation("tanh")


def test_predictor_reads_softmax_checkpoints():
    torch.manual_seed(0)
    net = build_model("unet3d", preset="tiny", out_channels=4)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 20.0]))  # class 3 (ET) everywhere
    ckpt = make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16),
                           provenance={"output_activation": "softmax"})
    vols, _ = tiny_volumes()
    image = np.stack([vols[k] for k in ("t1", "t1ce", "t2", "flair")])
    vol = CaseVolumes("c", image, ("t1n", "t1c", "t2w", "t2f"), None, Image(image[0], tiny_affine()), "brats2021")
    labels, probs = Predictor([ckpt], device="cpu", overlap=0.25).predict_volumes(vol)
    brain = image.any(0)
    assert probs.shape == (3, *brain.shape)
    assert (probs[:, brain] > 0.99).all()      # every region certain inside the brain
    box = np.zeros_like(brain)
    box[tuple(slice(lo, hi + 1) for lo, hi in zip(np.argwhere(brain).min(0), np.argwhere(brain).max(0)))] = True
    assert (labels[brain] == 4).all() and (labels[~box] == 0).all()  # nothing outside the brain's box
