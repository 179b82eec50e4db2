"""What a network's output channels mean, and how they become label values of a scheme.

A model's outputs are data (ARCHITECTURE.md §3), recorded in its checkpoint under ``"outputs"``:

* ``kind="regions"``: one sigmoid channel per named group of the scheme (``WT``, ``TC``, ``ET``,
  ``RC``, ``GTV``, ...); groups may overlap (nnU-Net v2's region-based training). Written back
  in channel order, later channels overwriting earlier ones (nnU-Net's ``regions_class_order``),
  after nesting is enforced: a channel whose group lies inside an earlier channel's group is kept
  only where that one is on (ET ⊂ TC ⊂ WT, as :func:`conventions.regions_to_labels`).
* ``kind="labels"``: softmax over ``("background", <labels>...)``; the label written is
  ``values[argmax]``.

Per-scheme defaults (:func:`default_outputs`) follow what each challenge scores:

================  ==================  ======================  =======================================
scheme            groups (channels)   values written           recovers
================  ==================  ======================  =======================================
brats2015/2021/   WT TC ET            the scheme's region      every label (as before)
2023, msd                             labels (2021: 2 1 4)
brats2024-gli     WT TC ET RC         2 1 3 4                  NETC = TC-ET, SNFH = WT-TC, RC exactly
brats2024-met     WT TC ET RC         2 1 3 4                  the scored WT TC ET RC
brats2024-ped     ED NETC CC ET       4 2 3 1                  its four labels (one channel each)
brats2024-men-rt  GTV                 1                        GTV
================  ==================  ======================  =======================================

A checkpoint without ``"outputs"`` predates them: it predicts the WT/TC/ET regions of its label
scheme (:func:`outputs_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .conventions import REGIONS, LabelScheme, get_scheme
from .errors import BratsSegError

KINDS = ("regions", "labels")

DEFAULT_GROUPS: Mapping[str, tuple[str, ...]] = {
    "brats2024-gli": ("WT", "TC", "ET", "RC"),
    "brats2024-met": ("WT", "TC", "ET", "RC"),
    "brats2024-ped": ("ED", "NETC", "CC", "ET"),
    "brats2024-men-rt": ("GTV",),
}
"""Region groups per scheme where they are not the nested WT, TC, ET (the 2017-2023 default)."""


@dataclass(frozen=True)
class Outputs:
    """What a network's output channels mean and how they are written back as label values.

    ``scheme``: the :data:`~brats_seg.conventions.LABEL_SCHEMES` key the write-back produces.
    ``kind``: ``"regions"`` (sigmoid, one channel per group, groups may overlap) or ``"labels"``
    (softmax, channel 0 background). ``groups``: regions: group names of the scheme in channel
    order; labels: ``("background", <label names>...)``. ``values``: regions: the label value
    written where each channel is on, in channel order, later channels overwriting; labels: the
    label value of each channel (0 first).
    """

    scheme: str
    kind: str
    groups: tuple[str, ...]
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        s = get_scheme(self.scheme)
        object.__setattr__(self, "scheme", s.name)
        object.__setattr__(self, "groups", tuple(str(g) for g in self.groups))
        object.__setattr__(self, "values", tuple(int(v) for v in self.values))
        if self.kind not in KINDS:
            raise BratsSegError(f"outputs kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.groups or len(self.groups) != len(self.values):
            raise BratsSegError(f"outputs need one value per group, got groups {list(self.groups)} and values"
                                f" {list(self.values)}")
        if len(set(self.groups)) != len(self.groups):
            raise BratsSegError(f"outputs list a group twice: {list(self.groups)}")
        bad = [v for v in self.values if v not in s.values]
        if bad:
            raise BratsSegError(f"outputs write values {bad} outside scheme {s.name} (valid {sorted(s.values)})")
        if self.kind == "regions":
            _check_groups(self.groups, s)
        elif self.values[0] != 0 or 0 in self.values[1:]:
            raise BratsSegError(f"label outputs start with background (value 0) and hold it once, got"
                                f" values {list(self.values)}")

    @property
    def channels(self) -> int:
        """Number of network output channels."""
        return len(self.groups)

    @property
    def region_groups(self) -> tuple[str, ...]:
        """The groups of the scheme whose masks the write-back gives (regions: ``groups``; labels: none)."""
        return self.groups if self.kind == "regions" else ()

    def to_dict(self) -> dict[str, Any]:
        """Plain types, stored in the checkpoint under ``"outputs"``."""
        return {"scheme": self.scheme, "kind": self.kind, "groups": list(self.groups), "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outputs:
        """Read :meth:`to_dict`'s form; a missing or malformed entry raises :class:`BratsSegError`."""
        if not isinstance(d, Mapping) or any(k not in d for k in ("scheme", "kind", "groups", "values")):
            raise BratsSegError(f"checkpoint outputs must hold scheme, kind, groups and values, got {d!r}")
        return cls(str(d["scheme"]), str(d["kind"]), tuple(d["groups"]), tuple(d["values"]))

    def masks(self, labels: np.ndarray, scheme: str | LabelScheme) -> tuple[np.ndarray, np.ndarray]:
        """Training targets of a label map ``(H, W, D)`` in ``scheme``: ``(masks (G, H, W, D) bool,
        known (G,) bool)``. A group ``scheme`` cannot express is unknown for that map: its mask is
        all False and ``known`` False (the loss leaves it out; nnU-Net v2's ignore-label idea, per case).
        Label outputs: one-hot masks ``(K, H, W, D)`` of their values, for maps of their own scheme only."""
        s = get_scheme(scheme)
        labels = np.asarray(labels)
        if self.kind == "labels":
            if s.name != self.scheme:
                raise BratsSegError(f"label outputs of scheme {self.scheme} cannot be trained on a {s.name} map"
                                    " (region outputs mask what a scheme cannot express)")
            return np.stack([labels == v for v in self.values]), np.ones(self.channels, bool)
        known = np.array([g in s.groups for g in self.groups])
        out = np.zeros((len(self.groups), *labels.shape), bool)
        for i, g in enumerate(self.groups):
            if known[i]:
                out[i] = np.isin(labels, sorted(s.groups[g]))
        return out, known

    def write_back(self, masks_or_argmax: np.ndarray) -> np.ndarray:
        """Regions: masks ``(G, H, W, D)`` bool -> label map ``(H, W, D)`` uint8, nesting enforced, then
        written in channel order. Labels: channel indices ``(H, W, D)`` (argmax) -> label values."""
        a = np.asarray(masks_or_argmax)
        if self.kind == "labels":
            return np.asarray(self.values, np.uint8)[a.astype(np.intp)]
        if a.shape[0] != self.channels:
            raise BratsSegError(f"expected {self.channels} output channels ({', '.join(self.groups)}),"
                                f" got shape {a.shape}")
        masks = nested(a.astype(bool), self.groups, self.scheme)
        out = np.zeros(a.shape[1:], np.uint8)
        for m, v in zip(masks, self.values):
            out[m] = v
        return out

    def for_scheme(self, scheme: str | LabelScheme) -> Outputs:
        """The same outputs written in another scheme (region groups must all exist there)."""
        s = get_scheme(scheme)
        if s.name == self.scheme:
            return self
        if self.kind == "labels":
            raise BratsSegError(f"label outputs of scheme {self.scheme} cannot be written in {s.name}")
        missing = [g for g in self.groups if g not in s.groups]
        if missing:
            raise BratsSegError(f"outputs {' '.join(self.groups)} cannot be written in label scheme {s.name}"
                                f" (it has no {', '.join(missing)})")
        return region_outputs(s.name, self.groups)


def _check_groups(groups: Sequence[str], s: LabelScheme) -> None:
    missing = [g for g in groups if g not in s.groups]
    if missing:
        raise BratsSegError(f"label scheme {s.name} cannot express {', '.join(missing)} (its groups:"
                            f" {', '.join(s.groups)})")


def nested(masks: np.ndarray, groups: Sequence[str], scheme: str | LabelScheme) -> np.ndarray:
    """Masks ``(G, ...)`` with each group kept only inside every earlier group that contains it in
    ``scheme`` (TC ⊂ WT, ET ⊂ TC: the nesting :func:`conventions.regions_to_labels` enforces)."""
    s = get_scheme(scheme)
    out = np.array(masks, bool, copy=True)
    for i, g in enumerate(groups):
        for j in range(i):
            if s.groups[g] <= s.groups[groups[j]]:
                out[i] &= out[j]
    return out


def region_value(groups: Sequence[str], i: int, s: LabelScheme) -> int:
    """The label written for channel ``i``: a label of its group outside every later group nested in it
    (the scheme's region label when it is one), else the group's smallest label."""
    g = set(s.groups[groups[i]])
    rest = set(g)
    for h in groups[i + 1:]:
        if s.groups[h] <= s.groups[groups[i]]:
            rest -= s.groups[h]
    options = rest or g
    usual = s.region_labels.get(groups[i]) if s.nested and groups[i] in REGIONS else None
    return usual if usual in options else min(options)


def region_outputs(scheme: str | LabelScheme, groups: Sequence[str]) -> Outputs:
    """Sigmoid region outputs for ``groups`` of ``scheme``, written back in that order (``--outputs``).
    A group the scheme cannot express raises :class:`BratsSegError` naming it."""
    s = get_scheme(scheme)
    groups = tuple(str(g).upper() for g in groups)
    _check_groups(groups, s)
    for i, g in enumerate(groups):
        inner = [h for h in groups[:i] if s.groups[h] < s.groups[g]]
        if inner:
            raise BratsSegError(f"outputs {' '.join(groups)}: list {g} before {', '.join(inner)}, which it contains"
                                " (outer groups first, as they are written back in order)")
    return Outputs(s.name, "regions", groups, tuple(region_value(groups, i, s) for i in range(len(groups))))


def label_outputs(scheme: str | LabelScheme) -> Outputs:
    """Softmax outputs over background and every label of ``scheme``, in value order."""
    s = get_scheme(scheme)
    values = (0, *sorted(s.labels))
    return Outputs(s.name, "labels", ("background", *(s.labels[v] for v in values[1:])), values)


def default_outputs(scheme: str | LabelScheme) -> Outputs:
    """The outputs a model trained on ``scheme`` gets by default (table in the module docstring)."""
    s = get_scheme(scheme)
    return region_outputs(s, DEFAULT_GROUPS.get(s.name, REGIONS))


def outputs_of(ckpt: Mapping[str, Any]) -> Outputs:
    """A checkpoint's outputs; one without ``"outputs"`` predicts the WT/TC/ET regions of its scheme."""
    if "outputs" in ckpt:
        return Outputs.from_dict(ckpt["outputs"])
    return region_outputs(str(ckpt.get("label_scheme", "brats2021")), tuple(ckpt.get("regions", REGIONS)))


__all__ = ["KINDS", "DEFAULT_GROUPS", "Outputs", "default_outputs", "region_outputs", "label_outputs",
           "outputs_of", "nested"]
