"""The V-NAS genotype: which convolution each cell of the encoder-decoder uses, as plain JSON.

::

    {"format": 1,
     "ops": ["conv3d", "conv2d", "p3d"],
     "cells": ["p3d", "conv3d", "conv2d", "conv3d", "p3d"],   # encoder cells, then decoder cells
     "features": [8, 16, 32], "strides": [1, 2, 2],          # the searched topology (informative)
     "weights": [[0.2, 0.3, 0.5], ...]}                      # softmax of the architecture parameters

``cells`` has ``2 * levels - 1`` entries: one per encoder level (full resolution first),
then one per decoder level (deepest first). Only ``cells`` is required.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...files import write_text

GENOTYPE_FORMAT = 1

OP_NAMES: tuple[str, ...] = ("conv3d", "conv2d", "p3d")
"""Candidate operations of a V-NAS cell: 3x3x3 convolution, in-plane 3x3x1 convolution,
pseudo-3-D pair (3x3x1 then 1x1x3)."""


def default_genotype(levels: int) -> dict[str, Any]:
    """Every cell a 3x3x3 convolution (the plain U-Net corner of the search space)."""
    return {"format": GENOTYPE_FORMAT, "ops": list(OP_NAMES), "cells": ["conv3d"] * (2 * levels - 1)}


def validate_genotype(genotype: Any, *, levels: int | None = None, source: str = "genotype") -> dict[str, Any]:
    """Return a plain-dict copy of ``genotype`` or raise :class:`ConfigError` with one clear line.

    ``levels``: the network's number of resolution levels; ``cells`` must then have
    ``2 * levels - 1`` entries.
    """
    if not isinstance(genotype, Mapping):
        raise ConfigError(f"{source}: a genotype is a dict with a 'cells' list, got {type(genotype).__name__}"
                          " (pass the dict; read files with brats_seg.models.nas.genotype.load_genotype)")
    cells = genotype.get("cells")
    if not isinstance(cells, (list, tuple)) or not cells:
        raise ConfigError(f"{source}: 'cells' must be a non-empty list of op names ({', '.join(OP_NAMES)})")
    for i, op in enumerate(cells):
        if op not in OP_NAMES:
            raise ConfigError(f"{source}: cell {i} has unknown op {op!r}; valid ops: {', '.join(OP_NAMES)}")
    fmt = genotype.get("format", GENOTYPE_FORMAT)
    if not isinstance(fmt, int) or fmt > GENOTYPE_FORMAT:
        raise ConfigError(f"{source}: genotype format {fmt!r} is not understood (this brats_seg reads"
                          f" format <= {GENOTYPE_FORMAT})")
    if levels is not None and len(cells) != 2 * levels - 1:
        raise ConfigError(f"{source}: {len(cells)} cells do not fit a network of {levels} levels"
                          f" (needs {2 * levels - 1}: one per encoder level, one per decoder level);"
                          " search with the same preset/features, or pass matching features")
    out = json.loads(json.dumps(dict(genotype)))  # plain copy (tuples -> lists); fails on non-JSON values
    out["cells"] = list(cells)
    return out


def save_genotype(genotype: Mapping[str, Any], path: str | Path) -> Path:
    """Validate and write ``genotype`` as JSON, atomically (temporary file, then rename)."""
    data = validate_genotype(genotype, source=str(path))
    return write_text(path, json.dumps(data, indent=2) + "\n")


def load_genotype(path: str | Path) -> dict[str, Any]:
    """Read and validate a genotype JSON file (ConfigError names the file and the problem)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: genotype file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    return validate_genotype(data, source=str(path))
