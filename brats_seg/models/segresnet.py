"""SegResNet (Myronenko 2018, "3D MRI brain tumor segmentation using autoencoder regularization",
BraTS 2018 winner, arXiv:1810.11654), wrapping MONAI's ``SegResNet`` / ``SegResNetVAE``.

An asymmetric encoder-decoder: ResNet-like blocks (group norm, ReLU) at 1, 2, 2, 4 blocks
per encoder level, one block per decoder level, trilinear up-sampling and additive skips.

The VAE branch (``vae=True``, training only) reconstructs the input from the bottleneck
and regularizes the encoder. It needs a fixed training patch (``input_image_size``, the
VAE has a dense layer sized to it). A train-mode forward then sets ``model.aux_loss`` to
``vae_weight * (KL + L2 reconstruction)`` (the paper weights both terms by 0.1); trainers add
``model.aux_loss`` to the segmentation loss. The forward output stays the usual logits tensor;
in eval mode the VAE branch does not run and any input size that fits ``size_divisor`` works.
No deep-supervision heads (the paper has none): ``deep_supervision=True`` is accepted and
the output is still one tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import SegResNet, SegResNetVAE

from ..errors import ConfigError
from .base import SegmentationNet
from .registry import register_model


class SegResNetNet(SegmentationNet):
    """MONAI SegResNet(VAE) behind the shared interface. ``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``."""

    encoder_prefixes = ("net.convInit.", "net.down_layers.")

    def __init__(self, *, in_channels: int, out_channels: int, init_filters: int, blocks_down: Sequence[int],
                 blocks_up: Sequence[int], dropout: float | None, vae: bool,
                 input_image_size: Sequence[int] | None, vae_weight: float) -> None:
        super().__init__()
        if len(blocks_up) != len(blocks_down) - 1:
            raise ConfigError(f"segresnet: blocks_up {list(blocks_up)} needs len(blocks_down) - 1 ="
                              f" {len(blocks_down) - 1} entries")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.size_divisor = 2 ** (len(blocks_down) - 1)
        self.vae, self.vae_weight = vae, float(vae_weight)
        common = dict(spatial_dims=3, init_filters=init_filters, in_channels=in_channels, out_channels=out_channels,
                      dropout_prob=dropout, norm=("GROUP", {"num_groups": 8}), blocks_down=tuple(blocks_down),
                      blocks_up=tuple(blocks_up))
        if init_filters % 8:
            raise ConfigError(f"segresnet: init_filters must be a multiple of 8 (group norm), got {init_filters}")
        if vae:
            if not input_image_size or len(input_image_size) != 3:
                raise ConfigError("segresnet with vae=True needs input_image_size=[H, W, D] (the training patch):"
                                  " the VAE branch has a dense layer sized to it")
            self.vae_size = tuple(int(s) for s in input_image_size)
            self.net: torch.nn.Module = SegResNetVAE(input_image_size=self.vae_size, **common)
        else:
            self.vae_size = None
            self.net = SegResNet(**common)

    @property
    def fixed_input_size(self) -> tuple[int, ...] | None:  # type: ignore[override]
        return self.vae_size if (self.vae and self.training) else None

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> torch.Tensor:
        if not self.vae:
            return self.net(x)
        logits, vae_loss = self.net(x)
        if vae_loss is not None:
            self.aux_loss = self.vae_weight * vae_loss
        return logits


@register_model(
    "segresnet",
    description="SegResNet: asymmetric residual encoder-decoder, optional VAE regularization (MONAI)",
    paper="Myronenko 2018, BraTS 2018 winner (arXiv:1810.11654)",
    presets={"tiny": {"init_filters": 8, "blocks_down": [1, 1, 1], "blocks_up": [1, 1]},
             "base": {"init_filters": 32, "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1]}},
)
def segresnet(*, in_channels: int, out_channels: int, deep_supervision: bool, init_filters: int,
              blocks_down: Sequence[int], blocks_up: Sequence[int], dropout: float | None = None, vae: bool = False,
              input_image_size: Sequence[int] | None = None, vae_weight: float = 0.1) -> SegResNetNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``; with ``vae=True`` train-mode forwards set ``aux_loss``."""
    return SegResNetNet(in_channels=in_channels, out_channels=out_channels, init_filters=init_filters,
                        blocks_down=blocks_down, blocks_up=blocks_up, dropout=dropout, vae=vae,
                        input_image_size=input_image_size, vae_weight=vae_weight)
