import pytest
import torch
from model_tester import ModelTester

from brats_seg.errors import ConfigError
from brats_seg.models.backbone import load_encoder_weights
from brats_seg.models.registry import build_model


class TestResNetUNet(ModelTester):
    name = "resnet_unet"
    has_deep_supervision = False
    spatial = (32, 32, 32)


class TestEfficientNetUNet(ModelTester):
    name = "efficientnet_unet"
    has_deep_supervision = False
    spatial = (32, 32, 32)


def test_load_encoder_weights_from_single_channel_resnet():
    """A MedicalNet-style file: 'module.' prefix, 1 input channel, a classifier we do not have."""
    from monai.networks.nets.resnet import ResNet

    torch.manual_seed(1)
    src = ResNet("basic", [1, 1, 1, 1], [8, 16, 32, 64], spatial_dims=3, n_input_channels=1, conv1_t_size=7,
                 conv1_t_stride=2, num_classes=2)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    model = build_model("resnet_unet", preset="tiny")
    report = load_encoder_weights(model, state)
    assert "encoder.conv1.weight" in report["loaded"] and "encoder.layer4.0.conv2.weight" in report["loaded"]
    assert report["missing"] == [] and "fc.weight" in report["unexpected"]
    w = model.state_dict()["encoder.conv1.weight"]
    torch.testing.assert_close(w, src.conv1.weight.repeat(1, 4, 1, 1, 1) / 4)
    torch.testing.assert_close(model.state_dict()["encoder.layer2.0.conv1.weight"], src.layer2[0].conv1.weight)
    assert not any(k.startswith("decoder") for k in report["loaded"])


def test_load_encoder_weights_reports_mismatch():
    tiny = build_model("resnet_unet", preset="tiny")
    other = build_model("resnet_unet", preset="tiny", widths=[8, 16, 32, 32])
    report = load_encoder_weights(tiny, other.state_dict())
    assert any("layer4" in m for m in report["mismatched"]) and report["loaded"]
    with pytest.raises(ConfigError, match="no encoder weights matched"):
        load_encoder_weights(tiny, {"foo.weight": torch.zeros(3)})
