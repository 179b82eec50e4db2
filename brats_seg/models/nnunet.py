"""nnU-Net's plain convolutional U-Net as configured for BraTS (Isensee et al. 2021, "nnU-Net: a
self-configuring method for deep learning-based biomedical image segmentation", Nature Methods;
BraTS 2020 winner, arXiv:2011.00848).

Six levels of 32, 64, 128, 256, 320, 320 filters, strided-convolution down-sampling,
two 3x3x3 conv-instance-norm-leaky-ReLU layers per level, transposed convolutions up,
and deep supervision heads at every decoder level but the lowest (cf. MONAI DynUNet and
dynamic-network-architectures' PlainConvUNet). Input sides must be multiples of 32.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import EncoderDecoderNet, build_unet
from .registry import register_model


@register_model(
    "nnunet",
    description="nnU-Net plain conv U-Net (32..320 filters, instance norm, leaky ReLU, deep supervision)",
    paper="Isensee et al. 2021, Nature Methods; BraTS 2020 winner (arXiv:2011.00848)",
    presets={"tiny": {"features": [4, 8, 16], "strides": [1, 2, 2]},
             "base": {"features": [32, 64, 128, 256, 320, 320], "strides": [1, 2, 2, 2, 2, 2]}},
)
def nnunet(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
           strides: Sequence[int], n_convs: int = 2, norm: str = "instance",
           act: str = "leakyrelu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)`` (train mode with deep supervision: a list, full resolution first)."""
    return build_unet(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, n_convs=n_convs, n_convs_decoder=n_convs, norm=norm,
                      act=act, down="conv")
