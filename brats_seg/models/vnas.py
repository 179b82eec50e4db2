"""V-NAS (Zhu et al. 2019, arXiv:1906.02817): the discrete network of a searched genotype.

``build_model("vnas", preset=..., **model_arguments(load_genotype("RUN/genotype.json")))``: the
genotype is a dict (plain JSON values; the CLI/trainer reads the file, networks read no files);
:func:`~brats_seg.models.nas.genotype.model_arguments` adds the residual blocks per level it was
searched with. Without a genotype every layer of the paper's space (``layer``, residual blocks)
is a 3x3x3 convolution, which is what ``brats-seg models`` lists. The preset's ``features`` must
have as many levels as the genotype. How the spaces and this network differ from the paper:
:mod:`brats_seg.models.nas.search_space`. Search: ``brats-seg search``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .blocks import EncoderDecoderNet, per_level
from .nas.genotype import default_genotype
from .nas.search_space import build_vnas
from .registry import register_model

VNAS_PRESETS = {
    "tiny": {"features": [8, 16, 32], "strides": [1, 2, 2], "blocks": 1, "decoder_blocks": 1},
    # nnU-Net's widths; 1, 3, 4, 6, 3 residual blocks per encoder level echo ResNet-50 (the paper's encoder)
    "base": {"features": [32, 64, 128, 256, 320], "strides": [1, 2, 2, 2, 2], "blocks": [1, 3, 4, 6, 3],
             "decoder_blocks": [1, 1, 1, 1]},
}


@register_model(
    "vnas",
    description="V-NAS: residual encoder-decoder whose every convolution is a searched 3-D, 2-D or pseudo-3-D op"
                " (genotype from brats-seg search)",
    paper="Zhu et al. 2019, 3DV (arXiv:1906.02817)",
    presets=VNAS_PRESETS,
)
def vnas(*, in_channels: int, out_channels: int, deep_supervision: bool, features: Sequence[int],
         strides: Sequence[int], blocks: int | Sequence[int] = 1, decoder_blocks: int | Sequence[int] = 1,
         genotype: dict[str, Any] | None = None, norm: str = "instance", act: str = "leakyrelu") -> EncoderDecoderNet:
    """``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``; ``genotype`` = the dict of a ``genotype.json`` (format 1 or 2)."""
    if genotype is None:
        n = len(features)
        genotype = default_genotype("layer", per_level(blocks, n, "blocks"), per_level(decoder_blocks, n - 1,
                                                                                      "decoder_blocks"))
    return build_vnas(in_channels=in_channels, out_channels=out_channels, deep_supervision=deep_supervision,
                      features=features, strides=strides, blocks=blocks, decoder_blocks=decoder_blocks,
                      genotype=genotype, norm=norm, act=act)
