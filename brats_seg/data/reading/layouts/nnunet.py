"""nnU-Net raw data: ``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` and a ``dataset.json``
naming the channels (v2 ``channel_names`` or v1 ``modality``); an unknown channel name is an error.
The label scheme hint comes from its ``labels`` entry (:func:`scheme_from_dataset_labels`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ....conventions import LABEL_SCHEMES
from ....errors import CaseError
from ..cases import Case
from ..image_io import read_json_object, strip_suffix
from .common import CHANNEL_FILE, CaseBuilder, attach_labels, channel_map, split_files


def detect(root: Path) -> int:
    if not root.is_dir():
        return 0
    return len({CHANNEL_FILE.match(strip_suffix(f))["case"] for _, f in split_files(root, channel_style=True)})


def _named_values(labels: Mapping) -> dict[str, list[int]]:
    """label name -> values, from v1 (``{"1": "edema"}``) or v2 (``{"edema": 1}``, lists for regions)."""
    named: dict[str, list[int]] = {}
    for k, v in labels.items():
        if isinstance(v, str):  # v1: value -> name
            named[v.lower()] = [int(k)]
        else:  # v2: name -> value or list of values
            named[str(k).lower()] = [int(x) for x in (v if isinstance(v, list) else [v])]
    return named


def _label_regions(named: dict[str, list[int]]) -> dict[str, set[int]]:
    """The WT/TC/ET label sets that named labels (or named regions) describe."""
    regions: dict[str, set[int]] = {"WT": set(), "TC": set(), "ET": set()}
    if any(len(v) > 1 for v in named.values()):  # region-based
        for name, values in named.items():
            for region, word in (("WT", "whole"), ("TC", "core"), ("ET", "enhanc")):
                if word in name and not name.startswith("non"):
                    regions[region] = set(values)
        return regions
    for name, (value,) in named.items():
        if value == 0 or "background" in name:
            continue
        regions["WT"].add(value)
        if name == "et" or ("enhanc" in name and "non" not in name):
            regions["ET"].add(value)
            regions["TC"].add(value)
        elif name not in ("ed", "snfh") and not any(w in name for w in ("edema", "hyperintens")):
            regions["TC"].add(value)
    return regions


def scheme_from_dataset_labels(labels: Mapping) -> str | None:
    """The label scheme a dataset.json ``labels`` entry describes, or None when unclear.

    Accepts nnU-Net v1/MSD (``{"1": "edema", ...}``) and v2 (``{"edema": 1, ...}``,
    or region-based ``{"whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}``).
    The entry's regions WT/TC/ET are compared with each scheme's; only a unique match counts.
    """
    try:
        regions = _label_regions(_named_values(labels))
    except (TypeError, ValueError, AttributeError):
        return None
    matches = [s.name for s in LABEL_SCHEMES.values()  # a scheme with labels outside WT (a cavity) cannot be told
               if s.nested and set(s.labels) == regions["WT"] and all(s.regions[r] == regions[r] for r in regions)]
    return matches[0] if len(matches) == 1 else None


def read(root: Path) -> list[Case]:
    meta = root / "dataset.json"
    if not meta.is_file():
        raise CaseError(f"{root}: nnU-Net layout needs dataset.json to name the channels (not found)")
    info = read_json_object(meta)
    names = info.get("channel_names") or info.get("modality")
    if not isinstance(names, Mapping) or not names:
        raise CaseError(f"{meta}: no 'channel_names' (nnU-Net v2) or 'modality' (v1) entry")
    by_index = {i: m for m, i in channel_map(names, meta).items()}
    hint = scheme_from_dataset_labels(info["labels"]) if isinstance(info.get("labels"), Mapping) else None
    builders: dict[str, CaseBuilder] = {}
    for _, f in split_files(root, channel_style=True):
        m = CHANNEL_FILE.match(strip_suffix(f))
        b = builders.setdefault(m["case"], CaseBuilder(m["case"]))
        channel = int(m["channel"])
        if channel in by_index:
            b.add_image(by_index[channel], f)
        else:
            b.problems.append(f"file {f.name} is channel {channel}, but dataset.json names channels "
                              f"{', '.join(str(i) for i in sorted(by_index))}")
    attach_labels(builders, root)
    return [b.build("nnunet", hint) for b in builders.values()]
