"""Parts that compose the U-shaped networks: layers, stages, an encoder and a decoder.

In the spirit of dynamic-network-architectures: an :class:`Encoder` is a list of
stages, each at one resolution; a :class:`Decoder` reads the encoder's widths and
strides instead of repeating them; :class:`EncoderDecoderNet` glues the two and
adds the shared interface (:class:`~brats_seg.models.base.SegmentationNet`). The
3-D U-Net, V-Net, residual U-Net, nnU-Net's plain U-Net and V-NAS differ only in
the stage they plug in (``make_stage``).

All tensors are ``(B, C, H, W, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .base import SegmentationNet

Kernel = int | Sequence[int]


def _triple(k: Kernel) -> tuple[int, int, int]:
    return (int(k),) * 3 if isinstance(k, int) else tuple(int(v) for v in k)  # type: ignore[return-value]


def conv3d(cin: int, cout: int, kernel: Kernel = 3, stride: int = 1, bias: bool = True) -> nn.Conv3d:
    """A 3-D convolution with 'same' padding (per axis ``(k - 1) // 2``); ``kernel`` may be anisotropic (3, 3, 1)."""
    k = _triple(kernel)
    return nn.Conv3d(cin, cout, k, stride=stride, padding=tuple((v - 1) // 2 for v in k), bias=bias)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "instance": lambda c: nn.InstanceNorm3d(c, affine=True),
    "batch": lambda c: nn.BatchNorm3d(c),
    "group": lambda c: nn.GroupNorm(math.gcd(8, c), c),
    "none": lambda c: nn.Identity(),
}
"""Normalization name -> factory(channels). Instance norm is the default: BraTS batches are small (2 patches)."""

ACTS: dict[str, Callable[[int], nn.Module]] = {
    "relu": lambda c: nn.ReLU(inplace=True),
    "leakyrelu": lambda c: nn.LeakyReLU(0.01, inplace=True),
    "prelu": lambda c: nn.PReLU(c),
    "elu": lambda c: nn.ELU(inplace=True),
}
"""Activation name -> factory(channels) (PReLU has one slope per channel, as in V-Net)."""


def _pick(table: dict, name: str, what: str):
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; choose one of {', '.join(table)}")
    return table[name]


def norm_layer(name: str, channels: int) -> nn.Module:
    return _pick(NORMS, name, "normalization")(channels)


def act_layer(name: str, channels: int) -> nn.Module:
    return _pick(ACTS, name, "activation")(channels)


class ConvNormAct(nn.Sequential):
    """conv -> norm -> activation (activation omitted with ``act=None``)."""

    def __init__(self, cin: int, cout: int, kernel: Kernel = 3, stride: int = 1, *, norm: str = "instance",
                 act: str | None = "leakyrelu") -> None:
        layers = [conv3d(cin, cout, kernel, stride, bias=norm == "none"), norm_layer(norm, cout)]
        if act is not None:
            layers.append(act_layer(act, cout))
        super().__init__(*layers)


class ConvStage(nn.Module):
    """One resolution level: optional down-sampling, then ``n_convs`` conv-norm-act layers.

    ``down``: ``"conv"`` (the first convolution is strided, nnU-Net), ``"pool"`` (max pooling
    first, 3-D U-Net) or ``"conv2"`` (a separate ``stride``-sized strided convolution, V-Net).
    ``residual``: the stage adds its input (projected by a 1x1x1 convolution when widths differ)
    before the last activation, as in V-Net and residual U-Nets.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, n_convs: int = 2, *, kernel: Kernel = 3,
                 norm: str = "instance", act: str = "leakyrelu", residual: bool = False, down: str = "conv") -> None:
        super().__init__()
        if n_convs < 1:
            raise ConfigError(f"a stage needs at least one convolution, got n_convs={n_convs}")
        self.pre: nn.Module = nn.Identity()
        first_stride = stride
        if stride > 1 and down == "pool":
            self.pre, first_stride = nn.MaxPool3d(stride), 1
        elif stride > 1 and down == "conv2":
            self.pre, first_stride = ConvNormAct(cin, cout, stride, stride, norm=norm, act=act), 1
            cin = cout
        elif down not in ("conv", "pool", "conv2"):
            raise ConfigError(f"unknown down-sampling {down!r}; choose one of conv, pool, conv2")
        convs = []
        for i in range(n_convs):
            last = i == n_convs - 1
            convs.append(ConvNormAct(cin if i == 0 else cout, cout, kernel, first_stride if i == 0 else 1,
                                     norm=norm, act=None if (residual and last) else act))
        self.convs = nn.Sequential(*convs)
        self.skip: nn.Module | None = None
        if residual:
            self.skip = (nn.Identity() if cin == cout and first_stride == 1 else
                         ConvNormAct(cin, cout, 1, first_stride, norm=norm, act=None))
            self.out_act = act_layer(act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        y = self.convs(x)
        if self.skip is not None:
            y = self.out_act(y + self.skip(x))
        return y


StageFactory = Callable[[int, int, int, int], nn.Module]
"""make_stage(cin, cout, stride, index) -> module; ``index`` numbers the stages (encoder first, then decoder)."""


class Encoder(nn.Module):
    """A stack of stages, one per resolution; ``forward`` returns every stage's output (the skips).

    ``features[i]`` channels at stride ``prod(strides[:i+1])``; ``(B, C, H, W, D)`` ->
    ``[(B, features[0], H/s0, ...), (B, features[1], ...), ...]``.
    """

    def __init__(self, in_channels: int, features: Sequence[int], strides: Sequence[int],
                 make_stage: StageFactory) -> None:
        super().__init__()
        if len(features) != len(strides) or len(features) < 2:
            raise ConfigError(f"features {list(features)} and strides {list(strides)} must have the same length >= 2")
        self.features, self.strides = [int(f) for f in features], [int(s) for s in strides]
        cins = [in_channels, *self.features[:-1]]
        self.stages = nn.ModuleList(make_stage(ci, co, s, i) for i, (ci, co, s) in
                                    enumerate(zip(cins, self.features, self.strides)))

    @property
    def total_stride(self) -> int:
        return math.prod(self.strides)

    def forward(self, x: torch.Tensor, stage_args: Sequence | None = None) -> list[torch.Tensor]:
        """``stage_args[i]``, when given, is passed to stage ``i`` as its second argument (a search network's
        architecture weights)."""
        skips = []
        for i, stage in enumerate(self.stages):
            x = stage(x) if stage_args is None else stage(x, stage_args[i])
            skips.append(x)
        return skips


class Decoder(nn.Module):
    """Transposed-convolution up-sampling, concatenation with the encoder skip, a stage, and 1x1x1 heads.

    Built from an :class:`Encoder` (reads its widths and strides). ``forward(skips, all_heads)``
    returns logits, full resolution first; the lower-resolution heads (one per decoder level
    above the bottleneck) exist only with ``deep_supervision`` and run only when ``all_heads``.
    """

    def __init__(self, encoder: Encoder, out_channels: int, make_stage: StageFactory, *,
                 deep_supervision: bool = False) -> None:
        super().__init__()
        f, s = encoder.features, encoder.strides
        levels = list(reversed(range(len(f) - 1)))  # decoder order: deepest first
        first = len(f)
        self.levels = levels
        self.ups = nn.ModuleList(nn.ConvTranspose3d(f[i + 1], f[i], s[i + 1], stride=s[i + 1]) for i in levels)
        self.stages = nn.ModuleList(make_stage(2 * f[i], f[i], 1, first + j) for j, i in enumerate(levels))
        n_heads = len(levels) if deep_supervision else 1
        self.heads = nn.ModuleList(nn.Conv3d(f[i], out_channels, 1) for i in range(n_heads))

    def forward(self, skips: list[torch.Tensor], all_heads: bool = False,
                stage_args: Sequence | None = None) -> list[torch.Tensor]:
        """``stage_args[j]``, when given, is passed to decoder stage ``j`` (deepest first) as its second argument."""
        x = skips[-1]
        outputs: dict[int, torch.Tensor] = {}
        for j, (up, stage, i) in enumerate(zip(self.ups, self.stages, self.levels)):
            x = torch.cat([up(x), skips[i]], dim=1)
            x = stage(x) if stage_args is None else stage(x, stage_args[j])
            if i == 0 or (all_heads and i < len(self.heads)):
                outputs[i] = self.heads[i](x)
        return [outputs[i] for i in sorted(outputs)]


class EncoderDecoderNet(SegmentationNet):
    """:class:`Encoder` + :class:`Decoder` with the shared interface (``size_divisor``, ``encoder_prefixes``)."""

    encoder_prefixes = ("encoder.",)

    def __init__(self, encoder: Encoder, decoder: Decoder, *, in_channels: int, out_channels: int,
                 deep_supervision: bool) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.in_channels, self.out_channels = in_channels, out_channels
        self.deep_supervision = deep_supervision
        self.size_divisor = encoder.total_stride

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> list[torch.Tensor]:
        return self.decoder(self.encoder(x), all_heads)


def per_level(value: int | Sequence[int], n: int, what: str) -> list[int]:
    """``value`` repeated ``n`` times, or the ``n`` values given (ConfigError otherwise)."""
    values = [int(value)] * n if isinstance(value, int) else [int(v) for v in value]
    if len(values) != n:
        raise ConfigError(f"{what} needs {n} values (one per level), got {values}")
    return values


def build_unet(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
               strides: Sequence[int], n_convs: int | Sequence[int] = 2, n_convs_decoder: int | Sequence[int] = 2,
               kernel: Kernel = 3, norm: str = "instance", act: str = "leakyrelu", residual: bool = False,
               down: str = "conv") -> EncoderDecoderNet:
    """A U-Net from :class:`ConvStage` parts; ``n_convs`` per encoder level, ``n_convs_decoder`` per decoder
    level (indexed by resolution, full resolution first; the bottleneck has no decoder stage)."""
    n = len(features)
    enc_convs = per_level(n_convs, n, "n_convs")
    dec_convs = per_level(n_convs_decoder, n - 1, "n_convs_decoder")

    def make_stage(cin: int, cout: int, stride: int, index: int) -> nn.Module:
        convs = enc_convs[index] if index < n else dec_convs[n - 1 - (index - n) - 1]
        return ConvStage(cin, cout, stride, convs, kernel=kernel, norm=norm, act=act, residual=residual,
                         down=down if index < n else "conv")

    encoder = Encoder(in_channels, features, strides, make_stage)
    decoder = Decoder(encoder, out_channels, make_stage, deep_supervision=deep_supervision)
    return EncoderDecoderNet(encoder, decoder, in_channels=in_channels, out_channels=out_channels,
                             deep_supervision=deep_supervision)
