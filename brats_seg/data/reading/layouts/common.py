"""What the layout readers share: listing volume files, collecting a case's files, channel names,
and the ``imagesTr``/``labelsTr`` folders of MSD and nnU-Net."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ....conventions import canonical_modality
from ....errors import BratsSegError, CaseError
from ..cases import Case, known_modality
from ..image_io import is_image_file, strip_suffix

LABEL_KEYS: frozenset[str] = frozenset({"seg", "label", "labels", "segmentation", "gtv"})
"""File-name suffixes (BraTS layouts) and CSV column names that mean the label map; ``gtv``: BraTS 2024
MEN-RT's released layout (``<case>/<case>_t1c.nii.gz``, ``<case>_gtv.nii.gz``)."""

CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
"""nnU-Net's per-channel image names: ``<case>_0000``."""
SPLITS = (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs"))


def modality_or_none(key: str) -> str | None:
    """The canonical modality a file suffix or column names, or None."""
    try:
        return canonical_modality(key)
    except BratsSegError:
        return None


def volume_files(folder: Path) -> list[Path]:
    """Visible volume files of a folder, sorted (macOS ``._*`` and other dot files skipped)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and is_image_file(p))


def subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class CaseBuilder:
    """Collects one case's files, recording duplicates as problems."""

    def __init__(self, case_id: str):
        self.case_id = case_id
        self.images: dict[str, Path] = {}
        self.label: Path | None = None
        self.problems: list[str] = []

    def add_image(self, modality: str, path: Path) -> None:
        if modality in self.images:
            self.problems.append(f"duplicate {modality} files: {self.images[modality].name} and {path.name}")
        else:
            self.images[modality] = path

    def add_label(self, path: Path) -> None:
        if self.label is not None:
            self.problems.append(f"duplicate label files: {self.label.name} and {path.name}")
        else:
            self.label = path

    def build(self, layout: str, label_scheme: str | None, channel_index: Mapping[str, int] | None = None) -> Case:
        return Case(self.case_id, dict(self.images), self.label, layout, label_scheme,
                    dict(channel_index or {}), tuple(self.problems))


def channel_map(names: Mapping, source: Path) -> dict[str, int]:
    """dataset.json ``{"0": "FLAIR", ...}`` -> ``{"t2f": 0, ...}`` (canonical names).

    An unknown name is a :class:`CaseError` naming ``source`` and listing the accepted names."""
    out: dict[str, int] = {}
    for index, name in names.items():
        modality = known_modality(str(name), source, what=f"channel {index!r} =")
        try:
            channel = int(index)
        except ValueError:
            raise CaseError(f"{source}: channel {index!r} = {name!r} is not numbered ('0', '1', ...)") from None
        if modality in out:
            raise CaseError(f"{source}: channels {out[modality]} and {channel} are both {modality}")
        out[modality] = channel
    return out


def split_files(root: Path, channel_style: bool) -> list[tuple[str, Path]]:
    """(split, file) for image files in imagesTr/imagesTs named per nnU-Net (``_0000``) or not (MSD)."""
    out = []
    for images, _ in SPLITS:
        for f in volume_files(root / images):
            if bool(CHANNEL_FILE.match(strip_suffix(f))) == channel_style:
                out.append((images, f))
    return out


def attach_labels(builders: dict[str, CaseBuilder], root: Path) -> None:
    """Add the label maps of labelsTr/labelsTs to the cases of the same name."""
    labels: dict[str, list[Path]] = {}
    for _, folder in SPLITS:
        for f in volume_files(root / folder):
            labels.setdefault(strip_suffix(f), []).append(f)
    for case_id, files in labels.items():
        b = builders.setdefault(case_id, CaseBuilder(case_id))
        if not b.images:
            b.problems.append(f"label {files[0].name} has no image files")
        for f in files:
            b.add_label(f)
