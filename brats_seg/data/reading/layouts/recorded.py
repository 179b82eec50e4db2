"""The label scheme brats_seg recorded beside a label map it wrote, so its own output is never
ambiguous to it: ``brats-seg predict`` writes ``<case>.json`` beside ``<case>.nii.gz``,
``brats-seg segment`` writes ``segment.json`` in the ``segmentation/`` folder of its label maps;
both hold ``label_scheme``."""

from __future__ import annotations

import json
from pathlib import Path

from ..image_io import strip_suffix


def recorded_scheme(label_map: str | Path) -> str | None:
    """The ``label_scheme`` recorded beside ``label_map`` by predict or segment, or None when none is.

    A sidecar that cannot be read or names no scheme counts as none (the map is then read as any other).
    """
    label_map = Path(label_map)
    for sidecar in (label_map.with_name(f"{strip_suffix(label_map)}.json"), label_map.with_name("segment.json")):
        try:
            scheme = json.loads(sidecar.read_text()).get("label_scheme")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(scheme, str):
            return scheme
    return None
