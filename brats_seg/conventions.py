"""Names that travel through the whole toolkit: modalities, label schemes, regions.

Everything here is data. Code elsewhere looks names up here instead of
hard-coding "ET is label 4" (the bug that broke BraTS 2023 in several
libraries, e.g. MONAI PR #8779).

Modalities use the BraTS 2023 names ``t1n, t1c, t2w, t2f``; older spellings and
the Medical Segmentation Decathlon (MSD) channel order are accepted on input.

Label schemes (value -> meaning):

============  ==================================================================
brats2015     1 necrosis, 2 edema, 3 non-enhancing tumor, 4 enhancing tumor
brats2021     1 necrotic/non-enhancing core (NCR/NET), 2 edema (ED), 4 enhancing (ET)
brats2023     1 non-enhancing tumor core (NETC), 2 surrounding FLAIR hyperintensity
              (SNFH, edema), 3 enhancing tumor (ET)
msd           1 edema, 2 non-enhancing tumor, 3 enhancing tumor (MSD Task01)
============  ==================================================================

Regions (what BraTS scores) are nested: ET ⊂ TC ⊂ WT.
"""

from __future__ import annotations

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
"""Scored regions, outermost first. Training targets are these nested masks."""

REGION_NAMES: Mapping[str, str] = {
    "WT": "whole tumor",
    "TC": "tumor core",
    "ET": "enhancing tumor",
}


@dataclass(frozen=True)
class LabelScheme:
    """One labelling convention: label values, their meaning, and the regions they form.

    ``regions`` maps each region to the label values it contains. ``from_regions``
    gives, innermost region first, the label written where that region is the
    innermost one present; it is how nested region masks become a label map.
    """

    name: str
    labels: Mapping[int, str]
    regions: Mapping[str, frozenset[int]]
    from_regions: tuple[tuple[str, int], ...]
    description: str

    @property
    def values(self) -> frozenset[int]:
        """Valid voxel values, background 0 included."""
        return frozenset({0, *self.labels})

    @property
    def et_label(self) -> int:
        """The label value of enhancing tumor."""
        return dict(self.from_regions)["ET"]


def _scheme(name, labels, wt, tc, et, from_regions, description) -> LabelScheme:
    return LabelScheme(
        name=name,
        labels=labels,
        regions={"WT": frozenset(wt), "TC": frozenset(tc), "ET": frozenset(et)},
        from_regions=from_regions,
        description=description,
    )


LABEL_SCHEMES: Mapping[str, LabelScheme] = {
    s.name: s
    for s in (
        _scheme(
            "brats2015",
            {1: "necrosis", 2: "edema", 3: "non-enhancing tumor", 4: "enhancing tumor"},
            wt={1, 2, 3, 4}, tc={1, 3, 4}, et={4},
            # a TC voxel that is not ET becomes 1 (necrosis): regions cannot tell
            # necrosis from non-enhancing tumor, so converting to this scheme merges them.
            from_regions=(("ET", 4), ("TC", 1), ("WT", 2)),
            description="BraTS 2012-2016",
        ),
        _scheme(
            "brats2021",
            {1: "necrotic / non-enhancing tumor core", 2: "peritumoral edema", 4: "enhancing tumor"},
            wt={1, 2, 4}, tc={1, 4}, et={4},
            from_regions=(("ET", 4), ("TC", 1), ("WT", 2)),
            description="BraTS 2017-2021",
        ),
        _scheme(
            "brats2023",
            {1: "non-enhancing tumor core", 2: "surrounding FLAIR hyperintensity", 3: "enhancing tumor"},
            wt={1, 2, 3}, tc={1, 3}, et={3},
            from_regions=(("ET", 3), ("TC", 1), ("WT", 2)),
            description="BraTS 2023 and later (GLI, MEN, MET, PED, SSA)",
        ),
        _scheme(
            "msd",
            {1: "edema", 2: "non-enhancing tumor", 3: "enhancing tumor"},
            wt={1, 2, 3}, tc={2, 3}, et={3},
            from_regions=(("ET", 3), ("TC", 2), ("WT", 1)),
            description="Medical Segmentation Decathlon Task01_BrainTumour",
        ),
    )
}


def get_scheme(name: str | LabelScheme) -> LabelScheme:
    """Look a label scheme up by name; an unknown name lists the valid ones."""
    if isinstance(name, LabelScheme):
        return name
    try:
        return LABEL_SCHEMES[name.lower()]
    except KeyError:
        raise BratsSegError(
            f"unknown label scheme {name!r}; valid: {', '.join(LABEL_SCHEMES)}"
        ) from None


def schemes_matching(values) -> list[str]:
    """Names of the schemes whose valid values contain every value in ``values``."""
    present = {int(v) for v in values}
    return [s.name for s in LABEL_SCHEMES.values() if present <= s.values]


def detect_scheme(values, hint: str | None = None) -> str:
    """Pick the label scheme for a set of label values.

    ``hint`` (from the dataset layout) wins when it is compatible. Values that fit
    several schemes without a hint raise: the scheme is never guessed silently.
    A label 4 rules out brats2023/msd; a label 3 without 4 rules out brats2021.
    """
    candidates = schemes_matching(values)
    if hint is not None:
        if hint in candidates:
            return hint
        raise BratsSegError(
            f"label values {sorted(int(v) for v in values)} do not fit scheme {hint!r}"
            f" (valid values {sorted(get_scheme(hint).values)})"
        )
    if not candidates:
        raise BratsSegError(
            f"label values {sorted(int(v) for v in values)} fit no known scheme"
        )
    if len(candidates) > 1:
        # brats2015 contains brats2021's values; 4 without 3 is the 2017-2021 convention.
        present = {int(v) for v in values}
        if set(candidates) == {"brats2015", "brats2021"} and 3 not in present:
            return "brats2021"
        raise BratsSegError(
            f"label values {sorted(present)} are ambiguous between schemes"
            f" {', '.join(candidates)}; give the scheme explicitly (--label-scheme)"
        )
    return candidates[0]


# --------------------------------------------------------------------------- conversions

def labels_to_regions(labels: np.ndarray, scheme: str | LabelScheme) -> np.ndarray:
    """Label map ``(H, W, D)`` -> nested region masks ``(3, H, W, D)`` bool, order WT, TC, ET."""
    s = get_scheme(scheme)
    labels = np.asarray(labels)
    return np.stack([np.isin(labels, sorted(s.regions[r])) for r in REGIONS])


def regions_to_labels(regions: np.ndarray, scheme: str | LabelScheme) -> np.ndarray:
    """Region masks ``(3, H, W, D)`` (WT, TC, ET) -> label map ``(H, W, D)`` uint8.

    Nesting is enforced, so the result always satisfies ET ⊂ TC ⊂ WT: a voxel is
    ET only where WT and TC also hold, TC only where WT holds.
    """
    s = get_scheme(scheme)
    regions = np.asarray(regions).astype(bool)
    if regions.shape[0] != len(REGIONS):
        raise BratsSegError(f"expected {len(REGIONS)} region channels, got shape {regions.shape}")
    wt = regions[0]
    tc = regions[1] & wt
    et = regions[2] & tc
    value = dict(s.from_regions)
    out = np.zeros(wt.shape, dtype=np.uint8)
    out[wt] = value["WT"]
    out[tc] = value["TC"]
    out[et] = value["ET"]
    return out


def convert_labels(labels: np.ndarray, source: str | LabelScheme, target: str | LabelScheme) -> np.ndarray:
    """Convert a label map between schemes, through the regions. Returns uint8.

    Exact wherever the target can express the source's distinctions; brats2015's
    necrosis and non-enhancing tumor both become the target's core label.
    """
    src, dst = get_scheme(source), get_scheme(target)
    if src.name == dst.name:
        return np.asarray(labels).astype(np.uint8, copy=False)
    return regions_to_labels(labels_to_regions(labels, src), dst)
