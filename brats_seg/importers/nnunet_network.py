"""nnU-Net v2 networks, rebuilt from ``plans.json`` with the classes nnU-Net uses
(``dynamic_network_architectures``), and the wrapper that makes several folds one member.

Only allow-listed classes are built: a ``plans.json`` names classes by import path, and importing
whatever a file names could run any code.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError

NETWORK_CLASSES: Mapping[str, str] = {
    "dynamic_network_architectures.architectures.unet.PlainConvUNet": "PlainConvUNet",
    "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet": "ResidualEncoderUNet",
}
"""``network_class_name`` in plans.json -> class in ``dynamic_network_architectures.architectures.unet``."""

OPERATIONS: Mapping[str, Any] = {
    "torch.nn.modules.conv.Conv3d": nn.Conv3d, "torch.nn.Conv3d": nn.Conv3d,
    "torch.nn.modules.instancenorm.InstanceNorm3d": nn.InstanceNorm3d, "torch.nn.InstanceNorm3d": nn.InstanceNorm3d,
    "torch.nn.modules.batchnorm.BatchNorm3d": nn.BatchNorm3d, "torch.nn.BatchNorm3d": nn.BatchNorm3d,
    "torch.nn.modules.dropout.Dropout3d": nn.Dropout3d, "torch.nn.Dropout3d": nn.Dropout3d,
    "torch.nn.LeakyReLU": nn.LeakyReLU, "torch.nn.modules.activation.LeakyReLU": nn.LeakyReLU,
    "torch.nn.ReLU": nn.ReLU, "torch.nn.modules.activation.ReLU": nn.ReLU,
}
"""The operations an ``arch_kwargs`` entry of ``_kw_requires_import`` may name (3-D networks only)."""


def build_dna_network(network_class: str, arch_kwargs: Mapping[str, Any], requires_import: Sequence[str],
                      in_channels: int, out_channels: int) -> nn.Module:
    """One ``dynamic_network_architectures`` U-Net as nnU-Net builds it for inference (no deep supervision)."""
    from dynamic_network_architectures.architectures import unet

    if network_class not in NETWORK_CLASSES:
        raise CheckpointError(f"network class {network_class!r} is not supported; supported: "
                              f"{', '.join(NETWORK_CLASSES)}")
    kwargs = dict(arch_kwargs)
    for key in requires_import:
        name = kwargs.get(key)
        if name is None:
            continue
        if name not in OPERATIONS:
            raise CheckpointError(f"arch_kwargs {key}={name!r} is not an allowed operation; allowed: "
                                  f"{', '.join(sorted(OPERATIONS))}")
        kwargs[key] = OPERATIONS[name]
    try:
        return getattr(unet, NETWORK_CLASSES[network_class])(input_channels=in_channels, num_classes=out_channels,
                                                             deep_supervision=False, **kwargs)
    except (TypeError, ValueError, AssertionError) as e:
        raise CheckpointError(f"{network_class} does not build from plans.json's arch_kwargs: {e}") from None


class NNUNetFolds(nn.Module):
    """nnU-Net v2 folds as one network over windows ``(B, C, H, W, D)`` -> logits ``(B, K, H, W, D)``.

    Per window, as ``nnUNetPredictor`` does: the input's axes are permuted to nnU-Net's array order
    (``axes``), each fold's logits are averaged over the mirrorings along ``mirror_axes`` (nnU-Net's
    axes; when :attr:`mirroring` is on) and over the folds, the output channels reordered by
    ``out_order`` (so regions come as WT, TC, ET and labels as background, WT-TC, TC-ET, ET) and
    the axes permuted back. Averaging logits per window equals nnU-Net's averaging of blended logits
    (both are linear). ``mirrors_inside`` tells the predictor not to mirror again.
    """

    mirrors_inside = True

    def __init__(self, *, network_class: str, arch_kwargs: Mapping[str, Any], requires_import: Sequence[str],
                 in_channels: int, out_channels: int, folds: int, axes: Sequence[int],
                 mirror_axes: Sequence[int], out_order: Sequence[int]):
        super().__init__()
        self.folds = nn.ModuleList(build_dna_network(network_class, arch_kwargs, requires_import, in_channels,
                                                     out_channels) for _ in range(int(folds)))
        self.axes = tuple(int(a) for a in axes)
        self.mirror_axes = tuple(int(a) for a in mirror_axes)
        self.out_order = tuple(int(c) for c in out_order)
        self.mirroring = False
        self.size_divisor = 1
        self.encoder_prefixes = tuple(f"folds.{k}.encoder." for k in range(int(folds)))  # for fine-tuning

    def set_mirroring(self, on: bool) -> None:
        self.mirroring = bool(on)

    def _combinations(self) -> list[tuple[int, ...]]:
        axes = self.mirror_axes if self.mirroring else ()
        return [()] + [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]

    def mirror_dims(self) -> list[list[int]]:
        """The mirrorings :meth:`forward` averages, as dims of OUR ``(B, C, H, W, D)`` windows to flip."""
        return [[self.axes[a] + 2 for a in c] for c in self._combinations()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # contiguous: oneDNN's 3-D convolutions on a permuted (strided) input run about 2x slower on a CPU
        x = x.permute(0, 1, *(a + 2 for a in self.axes)).contiguous()
        combos = self._combinations()
        total = None
        for net in self.folds:
            for c in combos:
                dims = [a + 2 for a in c]
                y = net(x.flip(dims)).flip(dims) if dims else net(x)
                total = y if total is None else total + y
        total = total / (len(self.folds) * len(combos))
        total = total[:, list(self.out_order)]
        back = [self.axes.index(a) + 2 for a in range(3)]
        return total.permute(0, 1, *back)
