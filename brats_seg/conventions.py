"""Names that travel through the whole toolkit: modalities, label schemes, regions.

Code elsewhere looks names up here instead of hard-coding "ET is label 4" (the
bug that broke BraTS 2023 in several libraries, e.g. MONAI PR #8779).
Modalities use the BraTS 2023 names ``t1n, t1c, t2w, t2f``; older spellings and
the Medical Segmentation Decathlon (MSD) channel order are accepted on input.

Label schemes (value -> meaning; regions nested, ET ⊂ TC ⊂ WT; the 2024+ groups and
scored groups as in the official ``brats-evaluation`` 0.0.10 configs):

================  ============================================  ==========  ====================
scheme            labels                                        TC / WT     scored groups
================  ============================================  ==========  ====================
brats2015         1 necrosis, 2 edema, 3 non-enh., 4 enhancing  1,3,4 / all WT TC ET
brats2021         1 NCR/NET, 2 edema, 4 ET                      1,4 / all   WT TC ET
brats2023         1 NETC, 2 SNFH, 3 ET                          1,3 / all   WT TC ET
msd               1 edema, 2 non-enhancing, 3 enhancing         2,3 / all   WT TC ET
brats2024-gli     1 NETC, 2 SNFH, 3 ET, 4 RC (resection cavity) 1,3 / 1-3   + NETC SNFH RC
brats2024-met     as brats2024-gli                              1,3 / 1-3   + RC
brats2024-ped     1 ET, 2 NETC, 3 CC (cyst), 4 ED (edema)       1-3 / all   + NETC CC ED
brats2024-men-rt  1 GTV                                         (none)      GTV
================  ============================================  ==========  ====================

Which scheme a map uses: :func:`detect_scheme` (one map) and
:func:`detect_dataset_schemes` (a dataset, decided on all its values together).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import BratsSegError

# --------------------------------------------------------------------------- modalities

MODALITIES: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")
"""Canonical modality names, in the default channel order."""

MODALITY_ALIASES: Mapping[str, str] = {
    # canonical
    "t1n": "t1n", "t1c": "t1c", "t2w": "t2w", "t2f": "t2f",
    # BraTS 2017-2021 file suffixes
    "t1": "t1n", "t1ce": "t1c", "t1gd": "t1c", "t2": "t2w", "flair": "t2f",
    # MSD / nnU-Net dataset.json channel names
    "t1w": "t1n", "t1-gd": "t1c", "t1c-gd": "t1c", "t2-flair": "t2f", "t2flair": "t2f",
    "native": "t1n", "post-contrast": "t1c", "t2-weighted": "t2w",
}
"""Lower-case spelling -> canonical modality name."""

MSD_CHANNEL_ORDER: tuple[str, ...] = ("t2f", "t1n", "t1c", "t2w")
"""Channel order of MSD Task01_BrainTumour's 4-D images: FLAIR, T1w, T1gd, T2w."""

MODALITY_DESCRIPTIONS: Mapping[str, str] = {
    "t1n": "native T1-weighted",
    "t1c": "contrast-enhanced (gadolinium) T1-weighted",
    "t2w": "T2-weighted",
    "t2f": "T2 fluid-attenuated inversion recovery (FLAIR)",
}


def canonical_modality(name: str) -> str:
    """Map any accepted spelling (``"T1ce"``, ``"FLAIR"``, ``"t1c"``) to its canonical name.

    Raises :class:`BratsSegError` listing the accepted spellings for an unknown one.
    """
    key = name.strip().lower().replace("_", "-")
    if key in MODALITY_ALIASES:
        return MODALITY_ALIASES[key]
    key = key.replace("-", "")
    if key in MODALITY_ALIASES:
        return MODALITY_ALIASES[key]
    raise BratsSegError(
        f"unknown modality {name!r}; accepted: {', '.join(sorted(MODALITY_ALIASES))}"
    )


# --------------------------------------------------------------------------- label schemes

REGIONS: tuple[str, ...] = ("WT", "TC", "ET")
"""The nested regions, outermost first. Training targets are these masks."""

GROUP_NAMES: Mapping[str, str] = {
    "WT": "whole tumor", "TC": "tumor core", "ET": "enhancing tumor", "NETC": "non-enhancing tumor core",
    "SNFH": "surrounding non-enhancing FLAIR hyperintensity", "RC": "resection cavity", "CC": "cystic component",
    "ED": "peritumoral edema", "GTV": "gross tumor volume",
}
"""Every group of labels a scheme scores, named as the official BraTS configs name them."""


class AmbiguousSchemeError(BratsSegError):
    """Label values fit several schemes that read (or score) them differently."""


@dataclass(frozen=True)
class LabelScheme:
    """One labelling convention: label values, their meaning, and the groups they form.

    ``groups`` maps every named group the scheme can express to its label values:
    the nested regions WT ⊃ TC ⊃ ET (for schemes that have them) and single
    structures (NETC, RC, ...). ``scored`` lists the groups the challenge scores,
    in report order.
    """

    name: str
    labels: Mapping[int, str]
    groups: Mapping[str, frozenset[int]]
    scored: tuple[str, ...]
    description: str

    @property
    def values(self) -> frozenset[int]:
        """Valid voxel values, background 0 included."""
        return frozenset({0, *self.labels})

    @property
    def nested(self) -> bool:
        """Whether the scheme has the nested regions WT, TC, ET (all but single-region schemes)."""
        return all(r in self.groups for r in REGIONS)

    @property
    def regions(self) -> Mapping[str, frozenset[int]]:
        """The nested regions WT, TC, ET -> label values; raises for a scheme without them."""
        if not self.nested:
            raise BratsSegError(f"label scheme {self.name} has no nested WT/TC/ET regions (its groups:"
                                f" {', '.join(self.groups)}); it can be evaluated, not turned into region targets")
        return {r: self.groups[r] for r in REGIONS}

    @property
    def region_labels(self) -> Mapping[str, int]:
        """Innermost region first: the label written where that region is the innermost one present
        (the smallest label of the region less the inner one: brats2015's TC -> 1, necrosis)."""
        r = self.regions
        return {"ET": min(r["ET"]), "TC": min(r["TC"] - r["ET"]), "WT": min(r["WT"] - r["TC"])}

    @property
    def et_label(self) -> int:
        """The label value of enhancing tumor."""
        (value,) = self.regions["ET"]
        return value

    def meaning(self, value: int) -> frozenset[str]:
        """The groups a label value belongs to (empty for background)."""
        return frozenset(g for g, values in self.groups.items() if value in values)


def _scheme(name, labels, groups, description, scored=REGIONS) -> LabelScheme:
    return LabelScheme(name, labels, {g: frozenset(v) for g, v in groups.items()}, tuple(scored), description)


_POST_TREATMENT = {1: "non-enhancing tumor core (NETC)", 2: "surrounding non-enhancing FLAIR hyperintensity (SNFH)",
                   3: "enhancing tumor (ET)", 4: "resection cavity (RC)"}
_POST_TREATMENT_GROUPS = {"WT": {1, 2, 3}, "TC": {1, 3}, "ET": {3}, "NETC": {1}, "SNFH": {2}, "RC": {4}}

LABEL_SCHEMES: Mapping[str, LabelScheme] = {
    s.name: s
    for s in (
        # regions cannot tell necrosis from non-enhancing tumor: a TC voxel that is not ET becomes 1
        _scheme("brats2015", {1: "necrosis", 2: "edema", 3: "non-enhancing tumor", 4: "enhancing tumor"},
                {"WT": {1, 2, 3, 4}, "TC": {1, 3, 4}, "ET": {4}}, "BraTS 2012-2016"),
        _scheme("brats2021", {1: "necrotic / non-enhancing tumor core", 2: "peritumoral edema", 4: "enhancing tumor"},
                {"WT": {1, 2, 4}, "TC": {1, 4}, "ET": {4}}, "BraTS 2017-2021"),
        _scheme("brats2023", {1: "non-enhancing tumor core", 2: "surrounding FLAIR hyperintensity",
                              3: "enhancing tumor"},
                {"WT": {1, 2, 3}, "TC": {1, 3}, "ET": {3}, "NETC": {1}, "SNFH": {2}},
                "BraTS 2023+ (GLI pre-operative, SSA, MEN, GoAT, 2023 MET and PED)"),
        _scheme("msd", {1: "edema", 2: "non-enhancing tumor", 3: "enhancing tumor"},
                {"WT": {1, 2, 3}, "TC": {2, 3}, "ET": {3}}, "Medical Segmentation Decathlon Task01_BrainTumour"),
        # the four below: brats-evaluation 0.0.10 configs gli, mets, ped, MenRT (groups and scored groups)
        _scheme("brats2024-gli", _POST_TREATMENT, _POST_TREATMENT_GROUPS,
                "BraTS 2024+ adult glioma, post-treatment", scored=("WT", "TC", "ET", "NETC", "SNFH", "RC")),
        _scheme("brats2024-met", _POST_TREATMENT, _POST_TREATMENT_GROUPS,
                "BraTS 2024+ brain metastases (pre- and post-treatment)", scored=("WT", "TC", "ET", "RC")),
        _scheme("brats2024-ped", {1: "enhancing tumor (ET)", 2: "non-enhancing tumor (NETC)",
                                  3: "cystic component (CC)", 4: "peritumoral edema (ED)"},
                {"WT": {1, 2, 3, 4}, "TC": {1, 2, 3}, "ET": {1}, "NETC": {2}, "CC": {3}, "ED": {4}},
                "BraTS 2024+ pediatric tumors", scored=("WT", "TC", "ET", "NETC", "CC", "ED")),
        _scheme("brats2024-men-rt", {1: "gross tumor volume (GTV)"}, {"GTV": {1}},
                "BraTS 2024+ meningioma radiotherapy planning (one region)", scored=("GTV",)),
    )
}


def get_scheme(name: str | LabelScheme) -> LabelScheme:
    """Look a label scheme up by name; an unknown name lists the valid ones."""
    if isinstance(name, LabelScheme):
        return name
    if name.lower() not in LABEL_SCHEMES:
        raise BratsSegError(f"unknown label scheme {name!r}; valid: {', '.join(LABEL_SCHEMES)}")
    return LABEL_SCHEMES[name.lower()]


# --------------------------------------------------------------------------- which scheme a map uses

_BRATS_NAMING = re.compile(r"^brats-(gli|ssa|men-rt|men|met|ped|goat)-", re.IGNORECASE)
_LEGACY_NAMING = re.compile(r"^(brats1[5-8]_|brats19_|brats20_|brats2021_)", re.IGNORECASE)

NAMING_SCHEMES: Mapping[str, tuple[str, ...]] = {
    "legacy": ("brats2021", "brats2015"),
    "gli": ("brats2023", "brats2024-gli"),
    "ssa": ("brats2023",),
    "men": ("brats2023",),
    "men-rt": ("brats2024-men-rt",),
    "met": ("brats2023", "brats2024-met"),
    "ped": ("brats2023", "brats2024-ped"),
    "goat": ("brats2023",),
}
"""The schemes a case id's naming allows, the naming's usual one first: ``legacy`` is the
2017-2021 naming (``Brats18_*``, ``BraTS2021_*``), the others the BraTS 2023+ sub-challenges
(``BraTS-PED-00001-000`` -> ``ped``)."""


def naming_of(case_id: str | None) -> str | None:
    """The key of :data:`NAMING_SCHEMES` a case id's naming belongs to, or None."""
    if not case_id:
        return None
    if m := _BRATS_NAMING.match(case_id):
        return m.group(1).lower()
    return "legacy" if _LEGACY_NAMING.match(case_id) else None


def _same_reading(a: LabelScheme, b: LabelScheme, values) -> bool:
    return all(a.meaning(v) == b.meaning(v) for v in values if v != 0)


def _candidates(hint: str | None, case_id: str | None) -> tuple[tuple[LabelScheme, ...], LabelScheme | None]:
    """(schemes to consider, the preferred one) for a map with this hint and case id.

    A hint that only repeats what the naming's folder layout gives every case (brats2021
    for the 2017-2021 naming, brats2023 for the 2023+ one) adds nothing to the naming;
    another hint of the naming's schemes decides (a manifest's ``label_scheme`` column).
    """
    naming = naming_of(case_id)
    family = NAMING_SCHEMES.get(naming or "")
    if family and (hint is None or get_scheme(hint).name in (family[0], "brats2021" if naming == "legacy"
                                                             else "brats2023")):
        return tuple(LABEL_SCHEMES[n] for n in family), LABEL_SCHEMES[family[0]]
    if family and get_scheme(hint).name in family:
        return (get_scheme(hint),), get_scheme(hint)
    if hint is not None:  # the hint, and the schemes that extend it (same meaning for its labels, more labels)
        h = get_scheme(hint)
        extensions = [s for s in LABEL_SCHEMES.values()
                      if s is not h and s.values > h.values and _same_reading(s, h, h.values)]
        return (h, *extensions), h
    return tuple(LABEL_SCHEMES.values()), None


def _resolve(values, candidates: tuple[LabelScheme, ...], preferred: LabelScheme | None) -> str:
    present = {int(v) for v in values}
    fit = [s for s in candidates if present <= s.values]
    if not fit:
        if preferred is None:
            raise BratsSegError(f"label values {sorted(present)} fit no known scheme")
        raise BratsSegError(f"label values {sorted(present)} do not fit scheme {preferred.name!r}"
                            f" (valid values {sorted(preferred.values)})")
    if preferred in fit and all(_same_reading(s, preferred, present) for s in fit):
        return preferred.name
    if all(_same_reading(s, fit[0], present) and s.scored == fit[0].scored for s in fit):
        return min(fit, key=lambda s: len(s.labels)).name
    raise AmbiguousSchemeError(
        f"label values {sorted(present)} are ambiguous between schemes {', '.join(s.name for s in fit)}"
        " (they read or score them differently); give the scheme explicitly (--label-scheme)")


def detect_scheme(values, hint: str | None = None, *, case_id: str | None = None) -> str:
    """Pick the label scheme of one label map from its values, the layout's hint and its case id.

    The case id's naming limits the schemes (:data:`NAMING_SCHEMES`: ``BraTS-PED-*`` is
    brats2023 or brats2024-ped); else the hint and the schemes that extend it; else all.
    Among the schemes the values fit, the preferred one (hint, else the naming's usual
    scheme) wins when every other reads the present values the same way; schemes that
    read and score them alike give the smallest. Anything else raises
    :class:`AmbiguousSchemeError`: the scheme is never guessed.
    """
    return _resolve(values, *_candidates(hint, case_id))


def detect_dataset_schemes(maps: Mapping) -> dict:
    """One decision per dataset: ``{key: (values, hint, case_id)}`` -> ``{key: scheme name or BratsSegError}``.

    Maps whose naming and hint allow the same schemes are decided together on the union
    of their values (a PED case holding 0-3 is brats2024-ped when another case holds 4).
    When that union fits no single scheme (mixed conventions), each map is decided alone;
    when it is ambiguous, every map of the group gets the error.
    """
    groups: dict[tuple, list] = {}
    for key, (_, hint, case_id) in maps.items():
        candidates, preferred = _candidates(hint, case_id)
        groups.setdefault((tuple(s.name for s in candidates), preferred and preferred.name), []).append(key)
    out: dict = {}
    for (names, preferred_name), keys in groups.items():
        rule = (tuple(LABEL_SCHEMES[n] for n in names), LABEL_SCHEMES.get(preferred_name))
        pooled = _decide(set().union(*({int(v) for v in maps[k][0]} for k in keys)), *rule)
        fits_none = isinstance(pooled, BratsSegError) and not isinstance(pooled, AmbiguousSchemeError)
        out.update({k: _decide(maps[k][0], *rule) if fits_none else pooled for k in keys})
    return out


def _decide(values, candidates, preferred) -> str | BratsSegError:
    try:
        return _resolve(values, candidates, preferred)
    except BratsSegError as e:
        return e


# --------------------------------------------------------------------------- conversions

def labels_to_regions(labels: np.ndarray, scheme: str | LabelScheme) -> np.ndarray:
    """Label map ``(H, W, D)`` -> nested region masks ``(3, H, W, D)`` bool, WT, TC, ET (none: raises)."""
    return group_masks(labels, scheme, tuple(get_scheme(scheme).regions))


def group_masks(labels: np.ndarray, scheme: str | LabelScheme, groups) -> np.ndarray:
    """Label map ``(H, W, D)`` -> masks ``(G, H, W, D)`` bool of the named ``groups`` of ``scheme``."""
    s = get_scheme(scheme)
    missing = [g for g in groups if g not in s.groups]
    if missing:
        raise BratsSegError(f"label scheme {s.name} has no group {', '.join(missing)} (its groups:"
                            f" {', '.join(s.groups)})")
    labels = np.asarray(labels)
    return np.stack([np.isin(labels, sorted(s.groups[g])) for g in groups])


def regions_to_labels(regions: np.ndarray, scheme: str | LabelScheme) -> np.ndarray:
    """Region masks ``(3, H, W, D)`` (WT, TC, ET) -> label map ``(H, W, D)`` uint8.

    Nesting is enforced, so the result always satisfies ET ⊂ TC ⊂ WT: a voxel is
    ET only where WT and TC also hold, TC only where WT holds. Labels the regions
    cannot express (a resection cavity, a cyst) are never written.
    """
    value = get_scheme(scheme).region_labels
    regions = np.asarray(regions).astype(bool)
    if regions.shape[0] != len(REGIONS):
        raise BratsSegError(f"expected {len(REGIONS)} region channels, got shape {regions.shape}")
    wt = regions[0]
    tc = regions[1] & wt
    out = np.zeros(wt.shape, dtype=np.uint8)
    out[wt], out[tc], out[regions[2] & tc] = value["WT"], value["TC"], value["ET"]
    return out


def label_mapping(source: str | LabelScheme, target: str | LabelScheme) -> dict[int, int | None]:
    """Source label value -> the target value of the same meaning, or None where the target has none.

    A label's meaning is the set of groups it belongs to, compared on the groups both
    schemes name. Several target labels of that meaning: the target's usual label for
    the region (brats2021's 1 -> brats2015's 1, necrosis; brats2023's 1 -> brats2024-ped's 2).
    """
    src, dst = get_scheme(source), get_scheme(target)
    if src is dst:
        return {v: v for v in src.values}
    common = src.groups.keys() & dst.groups.keys()
    out: dict[int, int | None] = {0: 0}
    for v in src.labels:
        want = src.meaning(v) & common
        options = [w for w in dst.labels if want and dst.meaning(w) & common == want]
        usual = [w for w in dst.region_labels.values() if w in options] if dst.nested else []
        out[v] = usual[0] if usual else min(options) if options else None
    return out


def convert_labels(labels: np.ndarray, source: str | LabelScheme, target: str | LabelScheme) -> np.ndarray:
    """Convert a label map ``(H, W, D)`` between schemes by meaning (:func:`label_mapping`). Returns uint8.

    Exact wherever the target can express the source's distinctions; brats2015's
    necrosis and non-enhancing tumor both become the target's core label. A map
    holding a label the target has no meaning for (a resection cavity into brats2021,
    a cyst into brats2023, anything between brats2024-men-rt and the others) raises
    instead of silently becoming background.
    """
    src, dst = get_scheme(source), get_scheme(target)
    labels = np.asarray(labels)
    present = label_values(labels)
    if not present <= src.values:
        raise BratsSegError(f"label values {sorted(present - src.values)} are outside scheme {src.name}"
                            f" (valid {sorted(src.values)})")
    mapping = label_mapping(src, dst)
    lost = [v for v in sorted(present) if mapping[v] is None]
    if lost:
        raise BratsSegError(f"cannot convert {src.name} to {dst.name}: "
                            + "; ".join(f"label {v} ({src.labels[v]}) has no counterpart" for v in lost))
    lut = np.zeros(max(src.values) + 1, np.uint8)
    for v, w in mapping.items():
        lut[v] = w or 0
    return lut[labels.astype(np.intp)]


def label_values(labels: np.ndarray) -> set[int]:
    """The distinct values of a label map, fast (label maps are mostly background). Non-integer values raise."""
    labels = np.asarray(labels)
    nonzero = labels != 0
    values = np.unique(labels[nonzero])
    bad = values[~(np.isfinite(values) & (values == np.round(values)))] if values.dtype.kind == "f" else []
    if len(bad):
        raise BratsSegError(f"label map has non-integer values (e.g. {', '.join(map(str, bad[:3]))})")
    return {int(v) for v in values} | ({0} if not nonzero.all() else set())
