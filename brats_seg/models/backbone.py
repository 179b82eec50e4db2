"""Encoder-backbone U-Nets: a 3-D ResNet or EfficientNet encoder with a U-Net decoder.

Like MONAI's ``FlexibleUNet`` (whose ``UNetDecoder`` and ``SegmentationHead`` we reuse), but
the encoder width and depth are arguments, so a ``tiny`` preset exists for CPU tests, and the
unused classification heads are dropped. The encoders keep MONAI's module names
(``conv1``, ``bn1``, ``layer1``..``layer4`` for ResNet, as in MedicalNet / Med3D weights;
``_conv_stem``, ``_blocks`` for EfficientNet), so published 3-D weights load by name with
:func:`brats_seg.training.weight_transfer.load_pretrained` (``--init-from``; networks read no files).

Papers: He et al. 2016 (ResNet, arXiv:1512.03385), Chen et al. 2019 (Med3D 3-D ResNets,
arXiv:1904.00625), Tan & Le 2019 (EfficientNet, arXiv:1905.11946). Five encoder outputs at
strides 2..32: input sides must be multiples of 32. No deep-supervision heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets.efficientnet import EfficientNet
from monai.networks.nets.flexible_unet import SegmentationHead, UNetDecoder
from monai.networks.nets.resnet import ResNet
from torch import nn

from ..errors import ConfigError
from .base import SegmentationNet
from .registry import register_model

_NORMS = {"batch": "batch", "instance": ("instance", {"affine": True}), "group": ("group", {"num_groups": 8})}

EFFICIENTNET_BLOCKS = [  # MONAI/EfficientNet-B0 stages: repeats, kernel, stride, expansion, in, out, squeeze-excite
    "r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
]


def _norm(name: str) -> Any:
    if name not in _NORMS:
        raise ConfigError(f"unknown normalization {name!r}; choose one of {', '.join(_NORMS)}")
    return _NORMS[name]


class ResNetEncoder(ResNet):
    """3-D ResNet feature extractor: ``(B, C, H, W, D)`` -> 5 maps at strides 2, 4, 8, 16, 32."""

    def __init__(self, in_channels: int, block: str, layers: Sequence[int], widths: Sequence[int],
                 norm: str) -> None:
        super().__init__(block, list(layers), list(widths), spatial_dims=3, n_input_channels=in_channels,
                         conv1_t_size=7, conv1_t_stride=2, feed_forward=False, norm=_norm(norm))
        del self.avgpool  # classification head: unused
        expansion = 4 if block == "bottleneck" else 1
        self.out_channels = [int(widths[0])] + [int(w) * expansion for w in widths]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        x = self.act(self.bn1(self.conv1(x)))
        features = [x]
        x = self.layer1(self.maxpool(x))
        features.append(x)
        for layer in (self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


class EfficientNetEncoder(EfficientNet):
    """3-D EfficientNet feature extractor (MBConv stages): 5 maps at strides 2, 4, 8, 16, 32."""

    def __init__(self, in_channels: int, width: float, depth: float, norm: str, drop_connect: float) -> None:
        super().__init__(list(EFFICIENTNET_BLOCKS), spatial_dims=3, in_channels=in_channels, num_classes=1,
                         width_coefficient=width, depth_coefficient=depth, image_size=128,
                         norm=_norm(norm), drop_connect_rate=drop_connect)
        for name in ("_conv_head", "_conv_head_padding", "_bn1", "_avg_pooling", "_dropout", "_fc"):
            if hasattr(self, name):  # classification head: unused
                delattr(self, name)
        self.out_channels = [self._blocks_args[s - 1].output_filters for s in self.extract_stacks]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        x = self._swish(self._bn0(self._conv_stem(self._conv_stem_padding(x))))
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i + 1 in self.extract_stacks:
                features.append(x)
        return features


class BackboneUNet(SegmentationNet):
    """Encoder (5 feature maps) + MONAI ``UNetDecoder`` + head. ``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``."""

    encoder_prefixes = ("encoder.",)
    size_divisor = 32

    def __init__(self, encoder: nn.Module, *, in_channels: int, out_channels: int,
                 decoder_channels: Sequence[int], norm: str) -> None:
        super().__init__()
        if len(decoder_channels) != 5:
            raise ConfigError(f"decoder_channels needs 5 values (one per encoder output), got {list(decoder_channels)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.encoder = encoder
        self.decoder = UNetDecoder(spatial_dims=3, encoder_channels=[in_channels, *encoder.out_channels],
                                   decoder_channels=list(decoder_channels), act=("relu", {"inplace": True}),
                                   norm=_norm(norm), dropout=0.0, bias=False, upsample="nontrainable",
                                   pre_conv="default", interp_mode="nearest", align_corners=None, is_pad=False)
        self.head = SegmentationHead(spatial_dims=3, in_channels=decoder_channels[-1], out_channels=out_channels,
                                     kernel_size=3)

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x), 4))


@register_model(
    "resnet_unet",
    description="U-Net with a 3-D ResNet encoder (MedicalNet-compatible names; pretrained encoder from a file)",
    paper="He et al. 2016 (arXiv:1512.03385); Chen et al. 2019, Med3D (arXiv:1904.00625)",
    presets={"tiny": {"layers": [1, 1, 1, 1], "widths": [8, 16, 32, 64], "decoder_channels": [32, 16, 8, 8, 8]},
             "base": {"layers": [2, 2, 2, 2], "widths": [64, 128, 256, 512],
                      "decoder_channels": [256, 128, 64, 32, 16]}},
)
def resnet_unet(*, in_channels: int, out_channels: int, deep_supervision: bool, layers: Sequence[int],
                widths: Sequence[int], decoder_channels: Sequence[int], block: str = "basic",
                norm: str = "batch") -> BackboneUNet:
    """ResNet-18-like encoder by default (``block="bottleneck"``, ``layers=[3, 4, 6, 3]`` gives ResNet-50)."""
    if block not in ("basic", "bottleneck") or len(layers) != 4 or len(widths) != 4:
        raise ConfigError("resnet_unet: block is basic|bottleneck; layers and widths need 4 values each")
    encoder = ResNetEncoder(in_channels, block, layers, widths, norm)
    return BackboneUNet(encoder, in_channels=in_channels, out_channels=out_channels,
                        decoder_channels=decoder_channels, norm=norm)


@register_model(
    "efficientnet_unet",
    description="U-Net with a 3-D EfficientNet (MBConv, squeeze-excite) encoder; pretrained encoder from a file",
    paper="Tan & Le 2019, ICML (arXiv:1905.11946)",
    presets={"tiny": {"width": 0.25, "depth": 0.25, "decoder_channels": [32, 16, 8, 8, 8]},
             "base": {"width": 1.0, "depth": 1.0, "decoder_channels": [256, 128, 64, 32, 16]}},
)
def efficientnet_unet(*, in_channels: int, out_channels: int, deep_supervision: bool, width: float, depth: float,
                      decoder_channels: Sequence[int], norm: str = "batch",
                      drop_connect: float = 0.2) -> BackboneUNet:
    """EfficientNet-B0 scaling at ``width=depth=1`` (B1: depth 1.1; B2: width 1.1, depth 1.2; ...)."""
    encoder = EfficientNetEncoder(in_channels, width, depth, norm, drop_connect)
    return BackboneUNet(encoder, in_channels=in_channels, out_channels=out_channels,
                        decoder_channels=decoder_channels, norm=norm)
