"""The layout registry (:data:`LAYOUTS`) and :func:`discover_cases`, which finds the cases under a
folder or CSV manifest in a registered layout, auto-detected or forced by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ....errors import BratsSegError, CaseError
from ..cases import Case
from . import csv_manifest, msd, nnunet
from .brats import BRATS2021, BRATS2023
from .common import subfolders, volume_files


@dataclass(frozen=True)
class Layout:
    """A dataset layout: ``detect(root)`` counts the cases it sees (0: not this layout;
    directory listings only), ``read(root)`` returns them."""

    name: str
    description: str
    detect: Callable[[Path], int]
    read: Callable[[Path], list[Case]]


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    if layout.name in LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is already registered")
    LAYOUTS[layout.name] = layout
    return layout


for _layout in (
    Layout("brats2021", "BraTS 2017-2021 folders: <case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz",
           BRATS2021.detect, BRATS2021.read),
    Layout("brats2023", "BraTS 2023+ folders: <case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz",
           BRATS2023.detect, BRATS2023.read),
    Layout("msd", "Medical Segmentation Decathlon: dataset.json, 4-D imagesTr/<case>.nii.gz, labelsTr/<case>.nii.gz",
           msd.detect, msd.read),
    Layout("nnunet", "nnU-Net raw: dataset.json, imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz",
           nnunet.detect, nnunet.read),
    Layout("csv", "CSV manifest: columns case_id, t1n, t1c, t2w, t2f, optional label, label_scheme",
           csv_manifest.detect, csv_manifest.read),
):
    register_layout(_layout)


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name.lower()]
    except KeyError:
        raise BratsSegError(f"unknown layout {name!r}; valid: {', '.join(LAYOUTS)}") from None


def detect_layout(root: str | Path) -> str | None:
    """The registered layout that sees the most cases under ``root`` (None if none does)."""
    root = Path(root)
    scores = {name: layout.detect(root) for name, layout in LAYOUTS.items()}
    best = max(scores, key=lambda n: scores[n])
    return best if scores[best] > 0 else None


def _detected(root: Path) -> tuple[Path, Layout]:
    """(root, layout) by detection; a folder holding only one subfolder with cases is looked into."""
    name = detect_layout(root)
    if name is None and root.is_dir():
        sub = subfolders(root)
        if len(sub) == 1 and not volume_files(root) and detect_layout(sub[0]) is not None:
            return _detected(sub[0])
    if name is None:
        raise CaseError(f"{root}: no recognisable cases (tried layouts {', '.join(LAYOUTS)})")
    return root, LAYOUTS[name]


FOLDER_LAYOUTS: tuple[str, ...] = ("brats2021", "brats2023")
"""Layouts of one folder per case: a dataset folder may hold only one of them (cases are never dropped)."""


def _refuse_mixed_layouts(root: Path) -> None:
    """A :class:`CaseError` when case folders of more than one of :data:`FOLDER_LAYOUTS` sit in ``root``."""
    if not root.is_dir():
        return
    seen = {name: LAYOUTS[name].detect(root) for name in FOLDER_LAYOUTS}
    seen = {name: n for name, n in seen.items() if n}
    if len(seen) > 1:
        counts = ", ".join(f"{n} in the {name} layout" for name, n in seen.items())
        raise CaseError(f"{root}: case folders of several layouts ({counts}); put each layout in its own"
                        " folder or list the cases in a CSV manifest")


def discover_cases(root: str | Path, layout: str | None = None, label_scheme: str | None = None) -> list[Case]:
    """Find the cases under ``root`` (a dataset folder, one case folder, or a CSV manifest).

    ``layout``: a name in :data:`LAYOUTS`, or None to detect it. ``label_scheme``: the scheme of
    every case's label map (``--label-scheme``: the checks hold the labels to it, as ``brats-seg check
    --label-scheme`` does; None: decided from the layout, case ids and values). A folder holding
    exactly one subfolder and no cases (an unpacked archive) is looked into.
    Returns the cases sorted by case id; unlabeled cases have ``label=None``.
    Raises :class:`CaseError` for a missing path, when no case is found, or when case folders of two
    layouts are mixed (one layout's cases would be left out without a word).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise CaseError(f"{root}: no such file or folder")
    if root.is_file() and layout is None and not csv_manifest.detect(root):
        raise CaseError(f"{root}: is a file; expected a dataset folder or a .csv manifest")
    root, chosen = (root, get_layout(layout)) if layout is not None else _detected(root)
    _refuse_mixed_layouts(root)
    cases = chosen.read(root)
    if not cases:
        raise CaseError(f"{root}: no cases in the {chosen.name} layout ({chosen.description})")
    if label_scheme is not None:
        from ....conventions import get_scheme

        name = get_scheme(label_scheme).name  # an unknown name is one line listing the known ones
        cases = [replace(c, label_scheme=name, scheme_given=True) for c in cases]
    return sorted(cases, key=lambda c: c.case_id)
