"""The V-NAS search spaces (Zhu et al. 2019, "V-NAS: Neural Architecture Search for Volumetric Medical
Image Segmentation", 3DV, arXiv:1906.02817): the supernet and the network of a genotype.

Space ``layer`` (default) is the paper's: an encoder-decoder built from residual blocks in
which **every** spatial convolution layer, in encoder and decoder, chooses among a 2-D
(3x3x1), a 3-D (3x3x3) and a pseudo-3-D (3x3x1 then 1x1x3) convolution
(:mod:`~brats_seg.models.nas.ops`). A level holds ``blocks[i]`` residual blocks
(``layer a -> layer b``, plus the input through a 1x1x1 projection where widths change);
each layer is ``conv -> norm -> activation`` (no activation before the residual sum).
Down-sampling is op-neutral: max pooling by the level's stride before its blocks, so a
choice of op never decides how resolution drops. Not searched: the 1x1x1 projections, the
transposed-convolution up-sampling and the 1x1x1 heads.

As in the paper: the three candidate ops, a choice per convolution layer of residual
blocks in encoder and decoder, a softmax over architecture parameters per layer
(continuous relaxation) and the strongest op per layer as the result. Different from the
paper: its network builds on AH-Net (Liu et al. 2018: a ResNet-50-style encoder of
bottleneck cells, its own decoder cells, a pyramid volumetric pooling head), whose widths
and depths are not reproduced here. Ours keeps the U-Net skeleton of this package's other
networks (:class:`~brats_seg.models.blocks.Encoder` / ``Decoder``: skip concatenation,
transposed-convolution up-sampling), basic residual blocks with two searched convolutions,
and nnU-Net's widths (base preset 32..320); the base preset's 1, 3, 4, 6, 3 blocks per
encoder level echo ResNet-50's 3, 4, 6, 3.

Space ``level`` (ours, smaller, NOT the paper's): one choice per U-Net level, used by both
plain ``conv -> norm -> act`` layers of that level (strided first layer where the level
down-samples); the mixed version sums whole two-layer cells, one per op.

:class:`VNASSearchNet` holds every candidate and the architecture parameters ``alphas``
(layers x ops), kept apart from the weights (``arch_parameters()`` / ``weight_parameters()``,
cf. MONAI DiNTS ``TopologySearch``); the softmax weights travel as arguments through
``stage(x, weights)`` and :class:`~brats_seg.models.nas.ops.MixedConv` (no hidden state).
:func:`build_vnas` builds the discrete network of a genotype (cf. DiNTS ``TopologyInstance``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ..blocks import ConvNormAct, Decoder, Encoder, EncoderDecoderNet, act_layer, norm_layer, per_level
from .genotype import GENOTYPE_FORMAT, OP_NAMES, genotype_blocks, validate_genotype
from .ops import MixedConv, make_op


class ConvLayer(nn.Module):
    """``conv -> norm -> act``; the conv is the op named ``op``, or a :class:`MixedConv` when ``op`` is None.

    ``forward(x, weights=None)``: ``weights`` ``(n_ops,)`` only for the mixed layer.
    """

    def __init__(self, cin: int, cout: int, op: str | None, *, stride: int = 1, norm: str, act: str | None) -> None:
        super().__init__()
        self.conv = MixedConv(cin, cout, stride) if op is None else make_op(op, cin, cout, stride)
        self.norm = norm_layer(norm, cout)
        self.act = act_layer(act, cout) if act else nn.Identity()

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.norm(self.conv(x) if weights is None else self.conv(x, weights)))


class ResidualBlock(nn.Module):
    """``act(layer_b(layer_a(x)) + skip(x))``: ``(B, cin, ...)`` -> ``(B, cout, ...)``; two searchable layers.

    ``ops``: the two op names, or None for the mixed block (``forward(x, weights (2, n_ops))``).
    """

    def __init__(self, cin: int, cout: int, ops: Sequence[str] | None, *, norm: str, act: str) -> None:
        super().__init__()
        op_a, op_b = ops if ops is not None else (None, None)
        self.layer_a = ConvLayer(cin, cout, op_a, norm=norm, act=act)
        self.layer_b = ConvLayer(cout, cout, op_b, norm=norm, act=None)
        self.skip = nn.Identity() if cin == cout else ConvNormAct(cin, cout, 1, norm=norm, act=None)
        self.out_act = act_layer(act, cout)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        wa, wb = (None, None) if weights is None else weights
        return self.out_act(self.layer_b(self.layer_a(x, wa), wb) + self.skip(x))


class ResidualStage(nn.Module):
    """Layer space, one level: max pooling by ``stride``, then ``n_blocks`` :class:`ResidualBlock`.

    ``ops``: ``2 * n_blocks`` op names, or None for the mixed stage (``forward(x, weights (2 * n_blocks, n_ops))``).
    """

    def __init__(self, cin: int, cout: int, stride: int, ops: Sequence[str] | None, n_blocks: int, *,
                 norm: str, act: str) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ConfigError(f"a V-NAS level needs at least one residual block, got {n_blocks}")
        self.pool = nn.MaxPool3d(stride) if stride > 1 else nn.Identity()
        self.blocks = nn.ModuleList(
            ResidualBlock(cin if b == 0 else cout, cout, None if ops is None else ops[2 * b:2 * b + 2], norm=norm,
                          act=act) for b in range(n_blocks))

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(x)
        for b, block in enumerate(self.blocks):
            x = block(x, None if weights is None else weights[2 * b:2 * b + 2])
        return x


class Cell(nn.Sequential):
    """Level space, discrete: two ``op -> norm -> act`` layers of one kind, the first strided:
    ``(B, cin, ...)`` -> ``(B, cout, .../stride)``."""

    def __init__(self, cin: int, cout: int, stride: int, op: str, *, norm: str = "instance",
                 act: str = "leakyrelu") -> None:
        super().__init__(make_op(op, cin, cout, stride), norm_layer(norm, cout), act_layer(act, cout),
                         make_op(op, cout, cout, 1), norm_layer(norm, cout), act_layer(act, cout))


class MixedCell(nn.Module):
    """Level space, mixed: ``sum_k weights[0, k] * Cell_k(x)``; ``forward(x, weights (1, n_ops))``."""

    def __init__(self, cin: int, cout: int, stride: int, *, norm: str, act: str) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(Cell(cin, cout, stride, op, norm=norm, act=act) for op in OP_NAMES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * cell(x) for w, cell in zip(weights[0], self.candidates))


def _level_stage(cin: int, cout: int, stride: int, ops: Sequence[str] | None, n_blocks: int, *, norm: str,
                 act: str) -> nn.Module:
    return MixedCell(cin, cout, stride, norm=norm, act=act) if ops is None else Cell(cin, cout, stride, ops[0],
                                                                                       norm=norm, act=act)


@dataclass(frozen=True)
class SearchSpace:
    """A search space: how many searchable layers a level of ``n`` residual blocks has, and its stage."""

    name: str
    description: str
    layers: Callable[[int], int]
    make_stage: Callable[..., nn.Module]  # (cin, cout, stride, ops | None, n_blocks, *, norm, act)


SPACES: dict[str, SearchSpace] = {
    "layer": SearchSpace("layer", "the paper's: a choice per convolution layer of residual blocks",
                         lambda n: 2 * n, ResidualStage),
    "level": SearchSpace("level", "smaller, not the paper's: one choice per level for two plain convolutions",
                         lambda n: 1, _level_stage),
}


def _space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]


def level_layers(space: str, blocks: Sequence[int], decoder_blocks: Sequence[int]) -> list[int]:
    """Searchable layers per level: encoder levels, then decoder levels (full resolution first)."""
    spec = _space(space)
    return [spec.layers(int(b)) for b in (*blocks, *decoder_blocks)]


def search_space_size(space: str, blocks: Sequence[int], decoder_blocks: Sequence[int]) -> tuple[int, int]:
    """``(searchable layers, architectures)``: architectures = ``len(OP_NAMES) ** layers``."""
    layers = sum(level_layers(space, blocks, decoder_blocks))
    return layers, len(OP_NAMES) ** layers


def _encoder_decoder(space: str, in_channels: int, out_channels: int, features: Sequence[int],
                     strides: Sequence[int], blocks: Sequence[int], decoder_blocks: Sequence[int],
                     ops: Callable[[str, int], Sequence[str] | None], *, deep_supervision: bool, norm: str,
                     act: str) -> tuple[Encoder, Decoder]:
    """Encoder and decoder whose level ``(part, level)`` stage takes ``ops(part, level)`` (None: mixed)."""
    spec, n = _space(space), len(features)

    def make_stage(cin: int, cout: int, stride: int, index: int) -> nn.Module:
        part, level = ("encoder", index) if index < n else ("decoder", 2 * n - 2 - index)  # decoder: deepest first
        n_blocks = blocks[level] if part == "encoder" else decoder_blocks[level]
        return spec.make_stage(cin, cout, stride, ops(part, level), n_blocks, norm=norm, act=act)

    encoder = Encoder(in_channels, features, strides, make_stage)
    return encoder, Decoder(encoder, out_channels, make_stage, deep_supervision=deep_supervision)


class VNASSearchNet(EncoderDecoderNet):
    """The supernet: ``(B, C, H, W, D)`` -> ``(B, out_channels, H, W, D)``, every searchable layer mixed.

    ``alphas``: ``(layers, n_ops)``, rows in genotype order (encoder levels, then decoder levels, full
    resolution first; layers in order within a level).
    """

    def __init__(self, *, in_channels: int, out_channels: int, features: Sequence[int], strides: Sequence[int],
                 space: str = "layer", blocks: int | Sequence[int] = 1, decoder_blocks: int | Sequence[int] = 1,
                 norm: str = "instance", act: str = "leakyrelu") -> None:
        n = len(features)
        enc_blocks, dec_blocks = per_level(blocks, n, "blocks"), per_level(decoder_blocks, n - 1, "decoder_blocks")
        encoder, decoder = _encoder_decoder(space, in_channels, out_channels, features, strides, enc_blocks,
                                            dec_blocks, lambda part, level: None, deep_supervision=False,
                                            norm=norm, act=act)
        super().__init__(encoder, decoder, in_channels=in_channels, out_channels=out_channels,
                         deep_supervision=False)
        self.space, self.blocks, self.decoder_blocks = space, enc_blocks, dec_blocks
        self.features, self.strides = list(encoder.features), list(encoder.strides)
        self.level_layers = level_layers(space, enc_blocks, dec_blocks)
        self.alphas = nn.Parameter(1e-3 * torch.randn(sum(self.level_layers), len(OP_NAMES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (``alphas``): stepped on the architecture half of the data."""
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter (convolutions, norms, heads): stepped on the weight half of the data."""
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def arch_weights(self) -> torch.Tensor:
        """``softmax(alphas)`` over the ops of each layer: ``(layers, n_ops)``."""
        return torch.softmax(self.alphas, dim=-1)

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> list[torch.Tensor]:
        per_level_weights = self.arch_weights().split(self.level_layers)
        n = len(self.features)
        encoder_w, decoder_w = per_level_weights[:n], per_level_weights[n:]
        return self.decoder(self.encoder(x, encoder_w), all_heads, decoder_w[::-1])  # decoder stages: deepest first

    def genotype(self) -> dict[str, Any]:
        """The discrete architecture: the strongest op of every layer, plus the softmax weights."""
        w = self.arch_weights().detach().cpu()
        picks = [OP_NAMES[i] for i in w.argmax(-1).tolist()]
        levels, start = [], 0
        for count in self.level_layers:
            levels.append(picks[start:start + count])
            start += count
        n = len(self.features)
        return validate_genotype({
            "format": GENOTYPE_FORMAT, "space": self.space, "encoder": levels[:n], "decoder": levels[n:],
            "features": self.features, "strides": self.strides,
            "weights": [[round(float(v), 5) for v in row] for row in w]})


def _check_fit(g: dict[str, Any], n: int, blocks: list[int], decoder_blocks: list[int]) -> None:
    if len(g["encoder"]) != n:
        raise ConfigError(f"genotype has {len(g['encoder'])} levels, the network {n} (one per entry of features);"
                          " search with the same preset/features, or pass matching features")
    if g["space"] == "layer":
        want = genotype_blocks(g)
        if want != {"blocks": blocks, "decoder_blocks": decoder_blocks}:
            raise ConfigError(f"genotype was searched with residual blocks {want['blocks']} (decoder"
                              f" {want['decoder_blocks']}), the network has {blocks} (decoder {decoder_blocks});"
                              f" pass blocks={want['blocks']} decoder_blocks={want['decoder_blocks']}"
                              " (brats-seg train --genotype does)")


def build_vnas(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
               strides: Sequence[int], genotype: dict[str, Any], blocks: int | Sequence[int] = 1,
               decoder_blocks: int | Sequence[int] = 1, norm: str = "instance",
               act: str = "leakyrelu") -> EncoderDecoderNet:
    """The discrete network of ``genotype``: its ops; ``features``/``strides`` set widths and down-sampling.

    ``blocks``/``decoder_blocks`` (residual blocks per level) must match a ``layer`` genotype; the
    ``level`` space has two plain convolutions per level and does not use them.
    """
    g = validate_genotype(genotype)
    n = len(features)
    if g["space"] == "layer":
        enc_blocks, dec_blocks = per_level(blocks, n, "blocks"), per_level(decoder_blocks, n - 1, "decoder_blocks")
    else:  # two plain convolutions per level: blocks are not used
        enc_blocks, dec_blocks = [1] * n, [1] * (n - 1)
    _check_fit(g, n, enc_blocks, dec_blocks)
    encoder, decoder = _encoder_decoder(g["space"], in_channels, out_channels, features, strides, enc_blocks,
                                        dec_blocks, lambda part, level: g[part][level],
                                        deep_supervision=deep_supervision, norm=norm, act=act)
    net = EncoderDecoderNet(encoder, decoder, in_channels=in_channels, out_channels=out_channels,
                            deep_supervision=deep_supervision)
    net.genotype = g
    return net
