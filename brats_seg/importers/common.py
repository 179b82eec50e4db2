"""What every importer shares: provenance (file hashes), output declarations and their write-back.

``outputs_dict`` and ``write_back`` stand in for ``brats_seg.outputs.Outputs`` (issue 20) until it
lands: they build and apply the same plain dict (``scheme``, ``kind``, ``groups``, ``values``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import REGIONS
from ..errors import CheckpointError


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(framework: str, version: str, root: Path, files: Iterable[Path], **extra: Any) -> dict[str, Any]:
    """The ``imported`` record of a checkpoint: framework, its version, source folder and each file's sha256."""
    return {"framework": framework, "version": version, "source": str(root),
            "files": {str(p.relative_to(root)): sha256_of(p) for p in sorted(set(files))}, **extra}


def outputs_dict(scheme: str, kind: str, groups: Sequence[str], values: Sequence[int]) -> dict[str, Any]:
    """The outputs declaration (``Outputs(...).to_dict()`` of issue 20's contract) as a plain dict.

    ``kind`` "regions": sigmoid channels ``groups`` (here always WT, TC, ET in that order), ``values``
    written in channel order, later channels overwriting (nnU-Net's ``regions_class_order``);
    "labels": softmax channels, ``groups`` ("background", label names...), ``values`` their label values.
    """
    if kind not in ("regions", "labels") or len(groups) != len(values):
        raise CheckpointError(f"outputs: kind {kind!r} with groups {list(groups)} and values {list(values)}")
    return {"scheme": str(scheme), "kind": kind, "groups": [str(g) for g in groups], "values": [int(v) for v in values]}


def write_back(outputs: Mapping[str, Any], probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Region probabilities ``(3, H, W, D)`` (WT, TC, ET, as every member gives them) -> uint8 labels.

    "regions": ``labels[p_c > threshold] = values[c]`` for c = WT, TC, ET in turn (later overwrite:
    nnU-Net's ``convert_probabilities_to_segmentation``, no nesting enforced); "labels": the argmax of
    the class probabilities (background, WT-TC, TC-ET, ET) recovered from the region probabilities.
    """
    p = np.asarray(probabilities, dtype=np.float32)
    values = [int(v) for v in outputs["values"]]
    out = np.zeros(p.shape[1:], dtype=np.uint8)
    if outputs["kind"] == "regions":
        for c in range(len(REGIONS)):
            out[p[c] > threshold] = values[c]
        return out
    classes = np.stack([1 - p[0], p[0] - p[1], p[1] - p[2], p[2]])
    return np.asarray(values, dtype=np.uint8)[np.argmax(classes, axis=0)]
