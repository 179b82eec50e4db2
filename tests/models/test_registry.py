import pytest

from brats_seg.errors import BratsSegError, ConfigError
from brats_seg.models.registry import build_model, list_models, model_info, register_model

ALL = ["unet3d", "vnet", "resunet", "segresnet", "nnunet", "resnet_unet", "efficientnet_unet", "vnas"]


def test_every_model_is_registered_with_paper():
    assert list_models() == ALL
    for name in ALL:
        info = model_info(name)
        assert info.description and info.paper and set(info.presets) >= {"tiny", "base"}


def test_unknown_name_lists_valid_and_suggests():
    with pytest.raises(BratsSegError, match="did you mean 'unet3d'") as e:
        build_model("unet_3d")
    assert all(n in str(e.value) for n in ALL)


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="no argument 'featurs'"):
        build_model("unet3d", preset="tiny", featurs=[4, 8])
    with pytest.raises(ConfigError, match="no preset 'huge'"):
        build_model("unet3d", preset="huge")
    with pytest.raises(ConfigError, match="plain value"):
        build_model("unet3d", preset="tiny", norm=object())
    with pytest.raises(ConfigError, match="unknown normalization 'batchy'"):
        build_model("unet3d", preset="tiny", norm="batchy")


def test_register_twice_is_an_error():
    with pytest.raises(ConfigError, match="already registered"):
        register_model("unet3d", description="x", paper="y")(lambda **k: None)


def test_kwargs_override_preset():
    model = build_model("nnunet", preset="tiny", features=[4, 8, 16, 32], strides=[1, 2, 2, 2])
    assert model.size_divisor == 8 and model.build_kwargs["features"] == [4, 8, 16, 32]
