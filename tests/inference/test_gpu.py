"""The sliding-window, mirroring and bf16 oracles again on CUDA (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_predictor_engine import member, symmetric_conv, tiny_case
from test_sliding_window import identity_net

from brats_seg.checkpoint import make_checkpoint
from brats_seg.data.augmentation.gpu_augment import DeviceAugmentation
from brats_seg.inference.predictor import Predictor
from brats_seg.inference.sliding_window import sliding_window
from brats_seg.models.registry import build_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("shape,window,overlap", [((23, 17, 19), (8, 8, 8), 0.5), ((5, 4, 3), (8, 8, 8), 0.75),
                                                  ((31, 12, 20), (7, 12, 9), 0.6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_identity_network_returns_input_on_cuda(shape, window, overlap, channels_last):
    torch.manual_seed(1)
    image = torch.randn(2, 3, *shape, device="cuda")
    image[:, :, : shape[0] // 3] = 0
    out = sliding_window(image, identity_net(3).cuda(), window, overlap=overlap, batch_size=3,
                         channels_last=channels_last)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out, image, rtol=1e-5, atol=1e-6)
    bf16 = sliding_window(image, identity_net(3).cuda(), window, overlap=overlap, batch_size=3, amp=True)
    torch.testing.assert_close(bf16, image, rtol=1e-2, atol=1e-2)  # bf16 keeps 8 bits of mantissa


def test_tta_of_an_equivariant_network_changes_nothing_on_cuda():
    vol = tiny_case((21, 26, 19))
    net = symmetric_conv()
    plain = Predictor([member(net, window=(16, 16, 16))], device="cuda", precision="fp32", tta=0).predict(vol)
    mirrored = Predictor([member(net, window=(16, 16, 16))], device="cuda", precision="fp32", tta=8).predict(vol)
    np.testing.assert_allclose(mirrored.box_probabilities, plain.box_probabilities, rtol=1e-4, atol=1e-5)


def test_cuda_fp32_equals_cpu_and_bf16_is_close():
    torch.manual_seed(0)
    net = build_model("nnunet", preset="tiny")
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16))
    vol = tiny_case((30, 27, 21))
    cpu = Predictor([ckpt], device="cpu").predict(vol)
    gpu = Predictor([ckpt], device="cuda", precision="fp32").predict(vol)
    bf16 = Predictor([ckpt], device="cuda", precision="bf16").predict(vol)
    assert np.abs(gpu.box_probabilities - cpu.box_probabilities).max() <= 1e-4
    assert np.abs(bf16.box_probabilities - cpu.box_probabilities).max() < 0.05
    assert (bf16.labels == cpu.labels).mean() > 0.98


def test_device_augmentation_on_cuda_keeps_shapes_and_labels():
    image = torch.randn(2, 4, 32, 32, 32, device="cuda")
    regions = (torch.rand(2, 1, 32, 32, 32, device="cuda") > 0.5).float().expand(2, 3, 32, 32, 32).clone()
    out, reg = DeviceAugmentation()(image, regions, np.random.default_rng(0))
    assert out.device.type == "cuda" and out.shape == image.shape and reg.shape == regions.shape
    assert set(torch.unique(reg).tolist()) <= {0.0, 1.0}
