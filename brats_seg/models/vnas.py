"""V-NAS (Zhu et al. 2019, arXiv:1906.02817): the discrete network of a searched genotype.

``build_model("vnas", genotype=load_genotype("RUN/genotype.json"), preset=...)``: the
genotype is a dict (plain JSON values; the CLI/trainer reads the file, networks read no files).
Without a genotype every cell is a 3x3x3 convolution (the plain U-Net corner of the space),
which is what ``brats-seg models`` lists. The preset's ``features`` must have as many levels
as the genotype was searched with (``2 * levels - 1`` cells). Search: ``brats-seg search``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .blocks import EncoderDecoderNet
from .nas.genotype import default_genotype
from .nas.search_space import build_vnas
from .registry import register_model

VNAS_PRESETS = {"tiny": {"features": [8, 16, 32], "strides": [1, 2, 2]},
                "base": {"features": [32, 64, 128, 256, 320], "strides": [1, 2, 2, 2, 2]}}


@register_model(
    "vnas",
    description="V-NAS: searched cells choosing 3-D, 2-D or pseudo-3-D convolutions (genotype from a search)",
    paper="Zhu et al. 2019, 3DV (arXiv:1906.02817)",
    presets=VNAS_PRESETS,
)
def vnas(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
         strides: Sequence[int], genotype: dict[str, Any] | None = None, norm: str = "instance",
         act: str = "leakyrelu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``; ``genotype`` = the dict of a ``genotype.json``."""
    return build_vnas(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, norm=norm, act=act,
                      genotype=genotype if genotype is not None else default_genotype(len(features)))
