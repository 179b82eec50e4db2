"""3-D U-Net (Çiçek et al. 2016, "3D U-Net: Learning Dense Volumetric Segmentation from Sparse
Annotation", MICCAI, arXiv:1606.06650).

Max-pooling encoder, transposed-convolution decoder with skip concatenation, two
3x3x3 conv-norm-ReLU layers per level. Deviation from the paper: instance instead of
batch normalization by default (BraTS batches hold 2 patches); ``norm="batch"`` restores it.
Deep supervision (lower-resolution heads) is optional.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import EncoderDecoderNet, build_unet
from .registry import register_model


@register_model(
    "unet3d",
    description="3-D U-Net: max-pool encoder, transposed-conv decoder, skip concatenation",
    paper="Çiçek et al. 2016, MICCAI (arXiv:1606.06650)",
    presets={"tiny": {"features": [8, 16, 32], "strides": [1, 2, 2]},
             "base": {"features": [32, 64, 128, 256], "strides": [1, 2, 2, 2]}},
)
def unet3d(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
           strides: Sequence[int], norm: str = "instance", act: str = "relu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``; ``features[i]`` channels at level i."""
    return build_unet(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, norm=norm, act=act, down="pool")
