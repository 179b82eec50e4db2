"""V-Net (Milletari et al. 2016, "V-Net: Fully Convolutional Neural Networks for Volumetric Medical
Image Segmentation", 3DV, arXiv:1606.04797).

Residual stages of 1, 2, 3, 3, 3 convolutions with 5x5x5 kernels and PReLU, down-sampling
by 2x2x2 stride-2 convolutions, and a mirrored decoder (3, 3, 2, 1 convolutions) fed by
transposed convolutions and skip concatenation. Written on our parts rather than wrapping
MONAI's ``VNet`` because that one has fixed widths (16..256; no CPU-sized preset) and requires
``16 % in_channels == 0``. Deviations: instance normalization (the paper has none), and
optional deep-supervision heads.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import EncoderDecoderNet, build_unet
from .registry import register_model


@register_model(
    "vnet",
    description="V-Net: residual 5x5x5 stages, strided-conv down-sampling, PReLU",
    paper="Milletari et al. 2016, 3DV (arXiv:1606.04797)",
    presets={"tiny": {"features": [4, 8, 16], "strides": [1, 2, 2], "n_convs": [1, 2, 2],
                      "n_convs_decoder": [1, 2], "kernel": 3},
             "base": {"features": [16, 32, 64, 128, 256], "strides": [1, 2, 2, 2, 2],
                      "n_convs": [1, 2, 3, 3, 3], "n_convs_decoder": [1, 2, 3, 3], "kernel": 5}},
)
def vnet(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
         strides: Sequence[int], n_convs: Sequence[int], n_convs_decoder: Sequence[int], kernel: int = 5,
         norm: str = "instance", act: str = "prelu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``; ``n_convs_decoder`` is indexed full resolution first."""
    return build_unet(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, n_convs=n_convs, n_convs_decoder=n_convs_decoder,
                      kernel=kernel, norm=norm, act=act, residual=True, down="conv2")
