"""Finding label maps and pairing predictions with references by case id.

Predictions are usually a flat folder of ``<case_id>.nii.gz`` label maps (the
BraTS submission format); ``<case_id>_seg.nii.gz``, ``<case_id>-seg.nii.gz`` and
one subfolder per case are accepted too. References are a dataset folder in any
layout :func:`brats_seg.data.reading.layouts.discover_cases` knows (their label maps and
the scheme the layout implies), or a folder of label maps like the predictions.

A folder of predictions is not one of ``data.reading.layouts``' layouts: a layout yields cases (a file per
sequence, the label optional), and a folder holding label maps only is no dataset (registered as a layout,
``discover_cases`` and ``check`` would take a folder of predictions for one). What the two share, which
files of a folder count (visible volume files, subfolders), is read through ``data.reading.layouts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data.reading.image_io import strip_suffix
from ..data.reading.layouts.common import subfolders, volume_files
from ..errors import BratsSegError, CaseError

LABEL_SUFFIXES: tuple[str, ...] = ("_seg", "-seg", "_pred", "-pred", "_label", "-label")
"""Name endings stripped from a label map's file name to get its case id."""


@dataclass
class LabelMaps:
    """Label maps found in a folder: case id -> file, plus the layout's scheme hint per case."""

    files: dict[str, Path] = field(default_factory=dict)
    schemes: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def case_id_of(path: Path) -> str:
    """``Brats18_X_seg.nii.gz`` -> ``Brats18_X``; ``BraTS-GLI-00000-000.nii.gz`` -> itself."""
    stem = strip_suffix(path)
    for suffix in LABEL_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _label_in_folder(folder: Path) -> Path | None:
    files = volume_files(folder)
    by_id = [p for p in files if case_id_of(p) == folder.name]
    if len(by_id) == 1:
        return by_id[0]
    seg = [p for p in files if "seg" in strip_suffix(p).lower() or "pred" in strip_suffix(p).lower()]
    if len(seg) == 1:
        return seg[0]
    return files[0] if len(files) == 1 else None


def find_label_maps(folder: str | Path) -> LabelMaps:
    """Label maps in a flat folder (``<case_id>[_seg].nii.gz``) or in one subfolder per case."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BratsSegError(f"{folder}: no such folder")
    found = LabelMaps()
    for entry in sorted(volume_files(folder) + subfolders(folder)):
        if entry.is_file():
            case_id, path = case_id_of(entry), entry
        else:
            path = _label_in_folder(entry)
            if path is None:
                continue
            case_id = entry.name
        if case_id in found.files:
            found.problems.append(f"case {case_id}: several label maps ({found.files[case_id].name}, {path.name});"
                                  f" using the first")
            continue
        found.files[case_id] = path
        found.schemes[case_id] = None
    return found


def find_references(folder: str | Path, layout: str | None = None) -> LabelMaps:
    """Reference label maps: a dataset folder (any layout ``discover_cases`` knows; ``layout`` forces one) or,
    when no layout is forced, a folder of label maps."""
    from ..data.reading.layouts import discover_cases

    folder = Path(folder)
    if not folder.exists():
        raise BratsSegError(f"{folder}: no such reference folder")
    if layout is not None:  # forced: its errors are the user's answer, and a folder of label maps is no layout
        cases = [c for c in discover_cases(folder, layout) if c.label is not None]
        if not cases:
            raise BratsSegError(f"{folder}: no labelled cases in the {layout} layout")
    else:
        try:
            cases = [c for c in discover_cases(folder) if c.label is not None]
        except CaseError:
            cases = []
    if cases:
        refs = LabelMaps()
        for c in cases:
            refs.files[c.case_id] = Path(c.label)
            refs.schemes[c.case_id] = c.label_scheme
        return refs
    refs = find_label_maps(folder)
    if not refs.files:
        raise BratsSegError(f"{folder}: no reference label maps found (expected a dataset folder with labels"
                            " or a folder of <case_id>.nii.gz label maps)")
    return refs


@dataclass
class Pairing:
    """Reference case ids with their prediction file (None: missing), and predictions without a reference."""

    pairs: list[tuple[str, Path | None, Path]]
    extra_predictions: list[str]

    @property
    def missing(self) -> list[str]:
        return [case_id for case_id, pred, _ in self.pairs if pred is None]


def pair_cases(predictions: LabelMaps, references: LabelMaps) -> Pairing:
    """Pair by exact case id; an unpaired prediction whose id is the end of exactly one unpaired
    reference id (``00000-000`` for ``BraTS-GLI-00000-000``), or the reverse, is paired too."""
    pred_left = dict(predictions.files)
    pairs: dict[str, Path | None] = {}
    for case_id in references.files:
        pairs[case_id] = pred_left.pop(case_id, None)
    for case_id in [c for c, p in pairs.items() if p is None]:
        hits = [p for p in pred_left if case_id.endswith(p) or p.endswith(case_id)]
        if len(hits) == 1:
            pairs[case_id] = pred_left.pop(hits[0])
    return Pairing([(c, pairs[c], references.files[c]) for c in sorted(pairs)], sorted(pred_left))
