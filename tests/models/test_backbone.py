import pytest
import torch
from model_tester import ModelTester

from brats_seg.errors import ConfigError
from brats_seg.models.registry import build_model


class TestResNetUNet(ModelTester):
    name = "resnet_unet"
    has_deep_supervision = False
    spatial = (32, 32, 32)


class TestEfficientNetUNet(ModelTester):
    name = "efficientnet_unet"
    has_deep_supervision = False
    spatial = (32, 32, 32)


def test_encoder_weights_load_through_the_transfer_loader(tmp_path):
    """One loader for every weights file (training.transfer; MedicalNet files: tests/training/test_transfer.py):
    a backbone of other widths loads what fits and reports the rest; a file that fits nothing is refused."""
    from brats_seg.training.weight_transfer import load_pretrained

    tiny = build_model("resnet_unet", preset="tiny")
    torch.save(build_model("resnet_unet", preset="tiny", widths=[8, 16, 32, 32]).state_dict(), tmp_path / "w.pt")
    report = load_pretrained(tiny, tmp_path / "w.pt")
    assert any("layer4" in m for m in report.mismatched) and "encoder.conv1.weight" in report.loaded
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="none of its 1 tensors fits"):
        load_pretrained(tiny, tmp_path / "bad.pt")
