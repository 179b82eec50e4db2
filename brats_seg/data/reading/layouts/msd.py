"""Medical Segmentation Decathlon Task01_BrainTumour: ``dataset.json``, 4-D ``imagesTr/BRATS_001.nii.gz``,
``labelsTr/BRATS_001.nii.gz``, ``imagesTs``.

The 4-D images' channel order comes from ``dataset.json``'s ``modality`` entry; an unknown
name there is an error. Without a ``dataset.json`` the order is Task01's documented one
(FLAIR, T1w, T1gd, T2w: :data:`~brats_seg.conventions.MSD_CHANNEL_ORDER`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ....conventions import MSD_CHANNEL_ORDER
from ....errors import CaseError
from ..cases import Case
from ..image_io import read_json_object, strip_suffix
from .common import CaseBuilder, attach_labels, channel_map, split_files


def detect(root: Path) -> int:
    return len(split_files(root, channel_style=False)) if root.is_dir() else 0


def msd_channels(root: Path) -> dict[str, int]:
    """Canonical modality -> index along the 4th axis, from ``ROOT/dataset.json`` (Task01's order without one)."""
    meta = root / "dataset.json"
    if not meta.is_file():
        return {m: i for i, m in enumerate(MSD_CHANNEL_ORDER)}
    names = read_json_object(meta).get("modality")
    if not isinstance(names, Mapping) or not names:
        raise CaseError(f"{meta}: no 'modality' entry naming the channels of the 4-D images"
                        ' (Task01_BrainTumour has {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"})')
    return channel_map(names, meta)


def read(root: Path) -> list[Case]:
    channels = msd_channels(root)
    builders: dict[str, CaseBuilder] = {}
    for _, f in split_files(root, channel_style=False):
        b = builders.setdefault(strip_suffix(f), CaseBuilder(strip_suffix(f)))
        if b.images:
            b.problems.append(f"duplicate image files: {next(iter(b.images.values())).name} and {f.name}")
            continue
        for modality in channels:
            b.images[modality] = f
    attach_labels(builders, root)
    return [b.build("msd", "msd", channels) for b in builders.values()]
