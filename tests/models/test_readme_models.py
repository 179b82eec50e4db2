"""README "Models": every model takes any number of input channels and gives 3 region logits; the base presets'
size divisors are the ones the README lists, and a wrong size fails at once saying which sizes fit."""

from __future__ import annotations

import pytest
import torch

import brats_seg as bs
from brats_seg.models.base import InputSizeError

DIVISORS = {"nnunet": 32, "resnet_unet": 32, "efficientnet_unet": 32, "unet3d": 8, "vnet": 16, "resunet": 16,
            "vnas": 16, "segresnet": 8}


def test_the_readme_lists_every_model():
    assert set(DIVISORS) == set(bs.list_models())


@pytest.mark.parametrize("name", sorted(DIVISORS))
def test_any_number_of_input_channels_gives_three_region_logits(name):
    torch.manual_seed(0)
    for channels in (1, 5):
        model = bs.build_model(name, preset="tiny", in_channels=channels).eval()
        side = model.size_divisor * 2
        with torch.no_grad():
            assert model(torch.randn(1, channels, side, side, side)).shape == (1, 3, side, side, side), channels


@pytest.mark.parametrize("name", sorted(DIVISORS))
def test_base_preset_size_divisors_and_the_size_error(name):
    with torch.device("meta"):  # the base presets' sizes without allocating their weights
        model = bs.build_model(name, preset="base")
    d = model.size_divisor
    assert d == DIVISORS[name]
    with pytest.raises(InputSizeError, match=f"multiples of {d}"):
        model(torch.zeros(1, 4, d + d // 2, d, d, device="meta"))
