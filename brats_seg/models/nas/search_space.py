"""The V-NAS search space (Zhu et al. 2019, "V-NAS: Neural Architecture Search for Volumetric Medical
Image Segmentation", 3DV, arXiv:1906.02817).

An encoder-decoder (our :class:`~brats_seg.models.blocks.Encoder` / ``Decoder`` parts) whose every
cell chooses among a 3-D 3x3x3 convolution, a 2-D 3x3x1 convolution and a pseudo-3-D pair
(3x3x1 then 1x1x3). :class:`VNASSearchNet` holds all candidates as a softmax-weighted
:class:`MixedCell` per position and the architecture parameters ``alphas`` (cells x ops),
kept apart from the weights (``arch_parameters()`` / ``weight_parameters()``, cf. MONAI
DiNTS ``TopologySearch``); :func:`build_vnas` builds the discrete network of a genotype
(cf. DiNTS ``TopologyInstance``). A cell is two (op -> norm -> activation) layers of the
same kind; the first one is strided where the level down-samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..blocks import Decoder, Encoder, EncoderDecoderNet, act_layer, conv3d, norm_layer
from .genotype import GENOTYPE_FORMAT, OP_NAMES, validate_genotype

OPS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "conv3d": lambda cin, cout, stride: conv3d(cin, cout, 3, stride, bias=False),
    "conv2d": lambda cin, cout, stride: conv3d(cin, cout, (3, 3, 1), stride, bias=False),
    "p3d": lambda cin, cout, stride: nn.Sequential(conv3d(cin, cout, (3, 3, 1), stride, bias=False),
                                                   conv3d(cout, cout, (1, 1, 3), 1, bias=False)),
}
"""Op name -> factory(cin, cout, stride); names match :data:`~.genotype.OP_NAMES`."""
assert tuple(OPS) == OP_NAMES


class Cell(nn.Sequential):
    """Two ``op -> norm -> act`` layers of one kind: ``(B, cin, ...)`` -> ``(B, cout, .../stride)``."""

    def __init__(self, cin: int, cout: int, stride: int, op: str, *, norm: str = "instance",
                 act: str = "leakyrelu") -> None:
        super().__init__(OPS[op](cin, cout, stride), norm_layer(norm, cout), act_layer(act, cout),
                         OPS[op](cout, cout, 1), norm_layer(norm, cout), act_layer(act, cout))


class MixedCell(nn.Module):
    """Softmax-weighted sum of one :class:`Cell` per candidate op.

    ``mix_weights`` (a ``(n_ops,)`` tensor) is set by :class:`VNASSearchNet` before each forward.
    """

    def __init__(self, cin: int, cout: int, stride: int, *, norm: str, act: str) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(Cell(cin, cout, stride, op, norm=norm, act=act) for op in OP_NAMES)
        self.mix_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix_weights is None:
            raise RuntimeError("MixedCell.mix_weights unset: run it inside VNASSearchNet")
        return sum(w * cell(x) for w, cell in zip(self.mix_weights, self.candidates))


class VNASSearchNet(EncoderDecoderNet):
    """The supernet: ``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``, every cell a :class:`MixedCell`."""

    def __init__(self, *, in_channels: int, out_channels: int, features: Sequence[int], strides: Sequence[int],
                 norm: str = "instance", act: str = "leakyrelu") -> None:
        cells: list[MixedCell] = []

        def make_stage(cin: int, cout: int, stride: int, index: int) -> nn.Module:
            cell = MixedCell(cin, cout, stride, norm=norm, act=act)
            cells.append(cell)
            return cell

        encoder = Encoder(in_channels, features, strides, make_stage)
        decoder = Decoder(encoder, out_channels, make_stage)
        super().__init__(encoder, decoder, in_channels=in_channels, out_channels=out_channels,
                         deep_supervision=False)
        self._cells = cells  # plain list (not registered twice); encoder cells first, then decoder (deepest first)
        self.features, self.strides = list(encoder.features), list(encoder.strides)
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(cells), len(OP_NAMES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (``alphas``, cells x ops): stepped on the validation split."""
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter (convolutions, norms, heads): stepped on the training split."""
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def arch_weights(self) -> torch.Tensor:
        """``softmax(alphas)``: ``(cells, ops)``."""
        return torch.softmax(self.alphas, dim=-1)

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> list[torch.Tensor]:
        weights = self.arch_weights()
        for cell, w in zip(self._cells, weights):
            cell.mix_weights = w
        return super().forward_outputs(x, all_heads)

    def genotype(self) -> dict[str, Any]:
        """The discrete architecture: the strongest op of every cell, plus the softmax weights."""
        w = self.arch_weights().detach().cpu()
        return {"format": GENOTYPE_FORMAT, "ops": list(OP_NAMES),
                "cells": [OP_NAMES[i] for i in w.argmax(-1).tolist()],
                "features": self.features, "strides": self.strides,
                "weights": [[round(float(v), 5) for v in row] for row in w]}


def build_vnas(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
               strides: Sequence[int], genotype: dict[str, Any], norm: str = "instance",
               act: str = "leakyrelu") -> EncoderDecoderNet:
    """The discrete network of ``genotype`` (its ``cells``; ``features``/``strides`` set the widths)."""
    cells = validate_genotype(genotype, levels=len(features))["cells"]

    def make_stage(cin: int, cout: int, stride: int, index: int) -> nn.Module:
        return Cell(cin, cout, stride, cells[index], norm=norm, act=act)

    encoder = Encoder(in_channels, features, strides, make_stage)
    decoder = Decoder(encoder, out_channels, make_stage, deep_supervision=deep_supervision)
    net = EncoderDecoderNet(encoder, decoder, in_channels=in_channels, out_channels=out_channels,
                            deep_supervision=deep_supervision)
    net.genotype_cells = list(cells)
    return net
