import pytest
import torch
from model_tester import ModelTester

from brats_seg.errors import ConfigError
from brats_seg.models.base import InputSizeError
from brats_seg.models.registry import build_model


class TestSegResNet(ModelTester):
    name = "segresnet"
    has_deep_supervision = False


def test_segresnet_vae_sets_aux_loss():
    torch.manual_seed(0)
    model = build_model("segresnet", preset="tiny", vae=True, input_image_size=[16, 16, 16]).train()
    y = model(torch.randn(2, 4, 16, 16, 16))
    assert y.shape == (2, 3, 16, 16, 16)
    assert model.aux_loss is not None and model.aux_loss.ndim == 0 and float(model.aux_loss.detach()) > 0
    (y.mean() + model.aux_loss).backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if "vae" in n)
    with pytest.raises(InputSizeError, match="exactly 16x16x16"):
        model(torch.randn(2, 4, 32, 32, 32))
    model.eval()  # inference: no VAE branch, any fitting size
    with torch.no_grad():
        assert model(torch.randn(1, 4, 32, 32, 32)).shape == (1, 3, 32, 32, 32)
    assert model.aux_loss is None


def test_segresnet_vae_needs_size():
    with pytest.raises(ConfigError, match="input_image_size"):
        build_model("segresnet", preset="tiny", vae=True)
