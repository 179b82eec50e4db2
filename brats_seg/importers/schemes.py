"""A source's channel and label names mapped to ours: sequence names and label schemes.

Regions (nnU-Net ``labels`` with tuples, and ``regions_class_order``): each region's label set must
be the WT, TC or ET group of one known scheme (nnU-Net's BraTS conversion: 1 edema, 2 non-enhancing,
3 enhancing, whole tumor (1, 2, 3), tumor core (2, 3), enhancing (3) = our ``msd``). Labels (softmax):
each foreground label is named as edema, non-enhancing/necrotic core or enhancing tumor, and the
values must be those of one known scheme with those meanings. Anything else is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..conventions import LABEL_SCHEMES, REGIONS, canonical_modality
from ..errors import BratsSegError, CheckpointError

ROLE_WORDS: Mapping[str, tuple[str, ...]] = {
    "ET": ("enhancing tumor", "enhancing tumour", "enhancing", "et"),
    "TC": ("non-enhancing", "non enhancing", "nonenhancing", "necrosis", "necrotic", "ncr", "net", "netc",
           "tumor core", "core"),
    "WT": ("edema", "oedema", "ed", "snfh", "flair hyperintensity", "whole tumor"),
}
"""Words naming a label's innermost region: WT (edema: WT only), TC (core less ET), ET. Checked in
the order TC before ET (``non-enhancing`` contains ``enhancing``)."""
ROLE_GROUPS = {"WT": frozenset({"WT"}), "TC": frozenset({"WT", "TC"}), "ET": frozenset({"WT", "TC", "ET"})}


def channel_names(given: Any, override: Sequence[str] | None, where: Path) -> list[str]:
    """Our sequence names of the source's channels ``{"0": "T1", ...}`` (or ``override``, in its order)."""
    if not isinstance(given, Mapping) or not given:
        raise CheckpointError(f"{where}: no channel_names")
    try:
        source = [str(given[k]) for k in sorted(given, key=int)]
    except (TypeError, ValueError):
        raise CheckpointError(f"{where}: channel_names keys must be 0, 1, ...") from None
    names = list(override) if override else source
    if len(names) != len(source):
        raise CheckpointError(f"--channels names {len(names)} channels, {where} has {len(source)} ({source})")
    out = []
    for name in names:
        try:
            out.append(canonical_modality(name))
        except BratsSegError:
            raise CheckpointError(f"{where}: channel {name!r} is not a sequence brats_seg knows (t1n, t1c, t2w,"
                                  " t2f or an alias); name the channels with --channels") from None
    if len(set(out)) != len(out):
        raise CheckpointError(f"{where}: channels {names} name a sequence twice")
    return out


def _nested_schemes():
    return [s for s in LABEL_SCHEMES.values() if s.nested]


def region_outputs(labels: Any, order: Any, where: Path) -> tuple[dict[str, Any], list[int], str]:
    """(outputs fields, network channel order giving WT, TC, ET, activation) of a regions model."""
    if not isinstance(labels, Mapping) or not isinstance(order, list):
        raise CheckpointError(f"{where}: regions need labels and regions_class_order lists")
    regions = [(n, frozenset(v if isinstance(v, list) else [v])) for n, v in labels.items() if n != "background"]
    if len(regions) != len(order):
        raise CheckpointError(f"{where}: {len(regions)} regions but regions_class_order has {len(order)} values")
    sets = [s for _, s in regions]
    for scheme in _nested_schemes():
        groups = [next((g for g in REGIONS if scheme.groups[g] == s), None) for s in sets]
        if sorted(g for g in groups if g) == sorted(REGIONS) and len(groups) == 3:
            channel = [groups.index(g) for g in REGIONS]
            if channel != sorted(channel):
                raise CheckpointError(f"{where}: regions_class_order writes {groups} in that order; only outer to"
                                      " inner (WT, TC, ET) is supported")
            values = [int(order[c]) for c in channel]
            return {"scheme": scheme.name, "kind": "regions", "groups": list(REGIONS), "values": values}, channel, \
                "sigmoid"
    described = ", ".join(f"{n} {sorted(s)}" for n, s in regions)
    raise CheckpointError(f"{where}: regions {described} are not the WT, TC and ET of a known label scheme"
                          f" ({', '.join(s.name for s in _nested_schemes())})")


def _role(name: str) -> str | None:
    text = re.sub(r"[_\-/]+", " ", name.lower())
    for role in ("TC", "ET", "WT"):
        if any(re.search(rf"\b{re.escape(w)}\b", text) for w in ROLE_WORDS[role]):
            return role
    return None


def label_outputs(labels: Any, order: Any, where: Path) -> tuple[dict[str, Any], list[int], str]:
    """(outputs fields, network channel order giving background, WT-TC, TC-ET, ET, activation) of a
    softmax-labels model (channel k is label value k, as nnU-Net requires consecutive labels)."""
    if not isinstance(labels, Mapping) or labels.get("background") != 0:
        raise CheckpointError(f"{where}: labels must map background to 0")
    fg = {n: v for n, v in labels.items() if n != "background"}
    if sorted(fg.values()) != list(range(1, len(fg) + 1)) or any(not isinstance(v, int) for v in fg.values()):
        raise CheckpointError(f"{where}: labels {dict(labels)} are not consecutive integers 1..{len(fg)}")
    roles = {n: _role(n) for n in fg}
    if sorted(r or "?" for r in roles.values()) != sorted(REGIONS):
        raise CheckpointError(f"{where}: labels {sorted(fg)} do not name edema, non-enhancing core and enhancing"
                              " tumor once each (no known label scheme has them)")
    by_role = {r: fg[n] for n, r in roles.items()}
    for scheme in _nested_schemes():
        if set(scheme.labels) == set(fg.values()) and all(
                scheme.meaning(v) & set(REGIONS) == ROLE_GROUPS[r] for r, v in by_role.items()):
            values = [0, by_role["WT"], by_role["TC"], by_role["ET"]]
            return {"scheme": scheme.name, "kind": "labels", "groups": ["background", "WT-TC", "TC-ET", "ET"],
                    "values": values}, values, "softmax"
    raise CheckpointError(f"{where}: labels {dict(fg)} match no known label scheme ({', '.join(LABEL_SCHEMES)})")
