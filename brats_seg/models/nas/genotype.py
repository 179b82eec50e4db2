"""The V-NAS genotype: which convolution every searchable layer uses, as plain JSON.

::

    {"format": 2,
     "space": "layer",                                   # or "level" (see search_space.SPACES)
     "ops": ["conv3d", "conv2d", "p3d"],
     "encoder": [["p3d", "conv3d"], ["conv3d", "conv2d"], ["conv2d", "conv2d"]],   # per level, full resolution first
     "decoder": [["conv3d", "p3d"], ["conv2d", "conv3d"]],                          # per level, full resolution first
     "features": [8, 16, 32], "strides": [1, 2, 2],      # the searched widths (informative)
     "weights": [[0.2, 0.3, 0.5], ...]}                   # softmax of the architecture parameters, one row per layer

Space ``layer`` (the paper's): a level's list holds two ops per residual block (the block's
two convolutions, in order). Space ``level`` (smaller, ours): a level's list holds one op,
used by both plain convolutions of that level. The rows of ``weights`` follow
``encoder`` then ``decoder``, layer by layer. Only ``space``, ``encoder`` and ``decoder``
are required.

Format 1 (before the layer space existed) wrote the level space as ``"cells": [...]``:
one op per encoder level (full resolution first), then one per decoder level (deepest
first). It is still read, as a ``level`` genotype.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...files import write_text

GENOTYPE_FORMAT = 2

OP_NAMES: tuple[str, ...] = ("conv3d", "conv2d", "p3d")
"""Candidate operations: 3x3x3 convolution, in-plane 3x3x1 convolution, pseudo-3-D pair (3x3x1 then
1x1x3). The same tuple as :data:`brats_seg.models.nas.ops.OP_NAMES` (this module stays torch-free)."""

SPACE_NAMES: tuple[str, ...] = ("layer", "level")
"""``layer``: the paper's space, a choice per convolution layer of residual blocks; ``level``: one
choice per U-Net level for two stacked plain convolutions (smaller, not the paper's)."""


def _from_format1(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Format 1 ``cells`` (decoder deepest first) as a format-2 ``level`` genotype (decoder full resolution first)."""
    cells = data.pop("cells", None)
    for i, op in enumerate(cells if isinstance(cells, list) else []):
        if op not in OP_NAMES:
            raise ConfigError(f"{source}: cell {i} has unknown op {op!r}; valid ops: {', '.join(OP_NAMES)}")
    if not isinstance(cells, list) or len(cells) < 3 or len(cells) % 2 == 0:
        raise ConfigError(f"{source}: 'cells' must list 2 * levels - 1 op names (levels >= 2), got {cells!r}")
    n = (len(cells) + 1) // 2
    weights = data.pop("weights", None)
    if isinstance(weights, list) and len(weights) == len(cells):
        data["weights"] = weights[:n] + weights[n:][::-1]
    return {**data, "space": "level", "encoder": [[c] for c in cells[:n]], "decoder": [[c] for c in cells[n:][::-1]]}


def _check_levels(part: str, levels: Any, space: str, source: str) -> list[list[str]]:
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ConfigError(f"{source}: '{part}' must be a non-empty list with one list of op names per level")
    out = []
    for i, ops in enumerate(levels):
        if not isinstance(ops, (list, tuple)) or not ops:
            raise ConfigError(f"{source}: {part} level {i} must be a non-empty list of op names, got {ops!r}")
        for op in ops:
            if op not in OP_NAMES:
                raise ConfigError(f"{source}: {part} level {i} has unknown op {op!r}; valid ops: {', '.join(OP_NAMES)}")
        if space == "level" and len(ops) != 1:
            raise ConfigError(f"{source}: {part} level {i}: the level space has one op per level, got {len(ops)}")
        if space == "layer" and len(ops) % 2:
            raise ConfigError(f"{source}: {part} level {i}: the layer space has two ops per residual block,"
                              f" got {len(ops)}")
        out.append(list(ops))
    return out


def validate_genotype(genotype: Any, *, source: str = "genotype") -> dict[str, Any]:
    """A normalized plain-dict copy of ``genotype`` (format 2), or :class:`ConfigError` with one clear line.

    Format-1 genotypes (``cells``) are converted to the ``level`` space.
    """
    if not isinstance(genotype, Mapping):
        raise ConfigError(f"{source}: a genotype is a dict with 'space', 'encoder' and 'decoder', got"
                          f" {type(genotype).__name__} (pass the dict; read files with"
                          " brats_seg.models.nas.genotype.load_genotype)")
    fmt = genotype.get("format", 1 if "cells" in genotype else GENOTYPE_FORMAT)
    if not isinstance(fmt, int) or not 1 <= fmt <= GENOTYPE_FORMAT:
        raise ConfigError(f"{source}: genotype format {fmt!r} is not understood (this brats_seg reads formats"
                          f" 1 to {GENOTYPE_FORMAT})")
    data = json.loads(json.dumps(dict(genotype)))  # plain copy (tuples -> lists); fails on non-JSON values
    if fmt == 1:
        data = _from_format1(data, source)
    space = data.get("space")
    if space not in SPACE_NAMES:
        raise ConfigError(f"{source}: unknown search space {space!r}; valid: {', '.join(SPACE_NAMES)}")
    encoder = _check_levels("encoder", data.get("encoder"), space, source)
    decoder = _check_levels("decoder", data.get("decoder"), space, source)
    if len(decoder) != len(encoder) - 1:
        raise ConfigError(f"{source}: {len(encoder)} encoder levels need {len(encoder) - 1} decoder levels,"
                          f" got {len(decoder)}")
    head = {"format": GENOTYPE_FORMAT, "space": space, "ops": list(OP_NAMES), "encoder": encoder, "decoder": decoder}
    return {**head, **{k: v for k, v in data.items() if k not in head}}


def layer_ops(genotype: Mapping[str, Any]) -> list[str]:
    """Every searchable layer's op, in the order of the architecture weights: encoder, then decoder."""
    return [op for part in ("encoder", "decoder") for ops in genotype[part] for op in ops]


def layer_names(genotype: Mapping[str, Any]) -> list[str]:
    """A short name per searchable layer, in :func:`layer_ops` order: ``enc0.b1a`` is encoder level 0,
    residual block 1, first layer (layer space); ``dec2`` is decoder level 2 (level space)."""
    names = []
    for part, tag in (("encoder", "enc"), ("decoder", "dec")):
        for level, ops in enumerate(genotype[part]):
            if genotype["space"] == "level":
                names.append(f"{tag}{level}")
            else:
                names += [f"{tag}{level}.b{k // 2}{'ab'[k % 2]}" for k in range(len(ops))]
    return names


def genotype_blocks(genotype: Mapping[str, Any]) -> dict[str, list[int]]:
    """Residual blocks per level of a ``layer`` genotype: ``{"blocks": [...], "decoder_blocks": [...]}``."""
    return {"blocks": [len(ops) // 2 for ops in genotype["encoder"]],
            "decoder_blocks": [len(ops) // 2 for ops in genotype["decoder"]]}


def model_arguments(genotype: Mapping[str, Any], *, source: str = "genotype") -> dict[str, Any]:
    """``build_model("vnas", **model_arguments(g))`` arguments fixed by a genotype: the genotype itself and,
    in the layer space, the residual blocks per level it was searched with (widths stay the preset's)."""
    g = validate_genotype(genotype, source=source)
    return {"genotype": g, **(genotype_blocks(g) if g["space"] == "layer" else {})}


def default_genotype(space: str, blocks: Sequence[int], decoder_blocks: Sequence[int]) -> dict[str, Any]:
    """Every layer a 3x3x3 convolution (the plain 3-D corner of the search space)."""
    per = (lambda n: ["conv3d"] * (2 * n)) if space == "layer" else (lambda n: ["conv3d"])
    return validate_genotype({"format": GENOTYPE_FORMAT, "space": space, "encoder": [per(int(b)) for b in blocks],
                              "decoder": [per(int(b)) for b in decoder_blocks]})


def describe_genotype(genotype: Mapping[str, Any]) -> str:
    """One line: ``layer space; encoder p3d conv3d | conv2d conv2d; decoder conv3d conv3d``."""
    parts = [f"{part} " + " | ".join(" ".join(ops) for ops in genotype[part]) for part in ("encoder", "decoder")]
    return f"{genotype['space']} space; " + "; ".join(parts)


def save_genotype(genotype: Mapping[str, Any], path: str | Path) -> Path:
    """Validate and write ``genotype`` as JSON (format 2), atomically (temporary file, then rename)."""
    data = validate_genotype(genotype, source=str(path))
    return write_text(path, json.dumps(data, indent=1) + "\n")


def load_genotype(path: str | Path) -> dict[str, Any]:
    """Read and validate a genotype JSON file, format 1 or 2 (ConfigError names the file and the problem)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: genotype file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    return validate_genotype(data, source=str(path))
