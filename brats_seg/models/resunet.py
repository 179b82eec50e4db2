"""Residual 3-D U-Net (Kerfoot et al. 2018, "Left-Ventricle Quantification Using Residual U-Net",
STACOM; the design of MONAI's ``UNet(num_res_units=2)``; cf. Zhang et al. 2018, "Road extraction by
deep residual U-Net").

Every level is a residual unit: two conv-norm-PReLU layers whose input (projected by a
strided 1x1x1 convolution when the shape changes) is added before the last activation.
Strided-convolution down-sampling, transposed convolutions up, optional deep supervision.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import EncoderDecoderNet, build_unet
from .registry import register_model


@register_model(
    "resunet",
    description="residual U-Net: residual conv units at every level, strided-conv down-sampling",
    paper="Kerfoot et al. 2018, STACOM (arXiv:1810.04274)",
    presets={"tiny": {"features": [8, 16, 32], "strides": [1, 2, 2]},
             "base": {"features": [32, 64, 128, 256, 320], "strides": [1, 2, 2, 2, 2]}},
)
def resunet(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
            strides: Sequence[int], n_convs: int = 2, norm: str = "instance", act: str = "prelu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``."""
    return build_unet(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, n_convs=n_convs, n_convs_decoder=n_convs, norm=norm,
                      act=act, residual=True, down="conv")
