"""What every importer shares: provenance (file hashes), output declarations and their write-back.

``outputs_dict`` validates a declaration through :class:`brats_seg.outputs.Outputs`; ``write_back`` is
the source's own region write-back (no nesting enforced), used where nothing else is asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.reading.image_io import read_json_object
from ..errors import BratsSegError, CaseError, CheckpointError
from ..outputs import Outputs


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


def read_json(path: Path) -> dict[str, Any]:
    """A source's JSON file holding an object (``dataset.json``, ``plans.json``, ``metadata.json``); unreadable
    or not an object: :class:`CheckpointError` naming it (a model's file, not a case's)."""
    try:
        return read_json_object(path)
    except CaseError as e:
        raise CheckpointError(str(e)) from None


def outputs_dict(scheme: str, kind: str, groups: Sequence[str], values: Sequence[int]) -> dict[str, Any]:
    """An imported model's outputs as the checkpoint stores them (:meth:`brats_seg.outputs.Outputs.to_dict`).

    ``kind`` "regions": sigmoid channels ``groups`` (WT, TC, ET in that order), ``values`` written in
    channel order, later channels overwriting (nnU-Net's ``regions_class_order``); "labels": softmax
    channels ``("background", ...)``, ``values`` their label values. A declaration :class:`Outputs`
    refuses raises :class:`CheckpointError`.
    """
    try:
        return Outputs(scheme, kind, tuple(groups), tuple(values)).to_dict()
    except BratsSegError as e:
        raise CheckpointError(f"outputs: {e}") from None


def write_back(outputs: Mapping[str, Any], probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Region probabilities ``(G, H, W, D)`` -> uint8 labels as the source's own code writes them:
    ``labels[p_c > threshold] = values[c]`` for each channel in turn, later ones overwriting, no nesting
    enforced (nnU-Net's ``convert_probabilities_to_segmentation``, the MONAI bundle's lambda)."""
    p = np.asarray(probabilities, dtype=np.float32)
    out = np.zeros(p.shape[1:], dtype=np.uint8)
    for c, value in enumerate(outputs["values"]):
        out[p[c] > threshold] = int(value)
    return out
