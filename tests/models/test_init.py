"""Weight initialisation: nnU-Net's He init (kaiming normal, negative slope 0.01, zero bias) and PyTorch's default."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from brats_seg.errors import ConfigError
from brats_seg.models.base import WEIGHT_INITS, init_weights
from brats_seg.models.registry import build_model


def test_he_init_draws_kaiming_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(32, 64, 3), nn.InstanceNorm3d(64, affine=True), nn.ConvTranspose3d(64, 16, 2))
    norm_weight = net[1].weight.detach().clone()
    init_weights(net, "he")
    conv = net[0]
    fan_in = 32 * 27
    expected = math.sqrt(2.0 / (1 + 0.01**2)) / math.sqrt(fan_in)  # He et al. 2015 with leaky ReLU gain
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.03)
    assert abs(conv.weight.mean().item()) < 0.1 * expected
    assert (conv.bias == 0).all() and (net[2].bias == 0).all()
    assert torch.equal(net[1].weight, norm_weight)  # norm layers untouched, as in nnU-Net


def test_default_init_keeps_pytorchs_weights_and_unknown_names_fail():
    torch.manual_seed(1)
    a = build_model("nnunet", preset="tiny")
    torch.manual_seed(1)
    b = init_weights(build_model("nnunet", preset="tiny"), "default")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert set(WEIGHT_INITS) == {"default", "he"}
    with pytest.raises(ConfigError, match="unknown weight initialisation 'xavier'"):
        init_weights(a, "xavier")


def test_the_trainer_applies_the_configured_init(tmp_path):
    from brats_seg.training.train_config import TrainConfig
    from brats_seg.training.trainer import build_network

    net = build_network(TrainConfig(model="nnunet", preset="tiny", patch=(16, 16, 16), init="he"), 4)
    biases = [m.bias for m in net.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)) and m.bias is not None]
    assert biases and all((b == 0).all() for b in biases)
