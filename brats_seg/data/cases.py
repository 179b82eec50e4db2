"""Cases: which files make up one subject, found in any supported dataset layout.

:func:`discover_cases` finds the cases under a folder (or CSV manifest) in one of
the registered layouts (:data:`LAYOUTS`), auto-detected or forced by name:

=========  =====================================================================================
brats2021  BraTS 2017-2021: ``BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz`` (also ``Brats18_*``,
           ``BraTS20_Training_*``); suffixes t1, t1ce, t2, flair, seg
brats2023  BraTS 2023+: ``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1c.nii.gz`` (GLI, MEN, MET, PED,
           SSA, ...); suffixes t1n, t1c, t2w, t2f, seg
msd        Medical Segmentation Decathlon Task01_BrainTumour: ``dataset.json``, 4-D ``imagesTr/BRATS_001.nii.gz``,
           ``labelsTr/BRATS_001.nii.gz``, ``imagesTs``
nnunet     nnU-Net raw data: ``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz``, ``dataset.json``
           naming the channels (v2 ``channel_names`` or v1 ``modality``)
csv        a manifest ``cases.csv`` with columns case_id, t1n, t1c, t2w, t2f (any modality alias), optional
           label and label_scheme; relative paths are relative to the CSV's folder
=========  =====================================================================================

A :class:`Case` only names files; :func:`load_case` reads them into a
:class:`CaseVolumes` (channels stacked in a given order, by NAME). Discovery
only lists folders and reads ``dataset.json``/the CSV; problems it sees
(duplicate or unrecognised modality files) are recorded in :attr:`Case.problems`
for :mod:`brats_seg.data.checks` to report, never raised.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import LABEL_SCHEMES, MODALITIES, MSD_CHANNEL_ORDER, canonical_modality, get_scheme
from ..errors import BratsSegError, CaseError
from .io import Image, is_image_file, read_image, strip_suffix


@dataclass(frozen=True)
class Case:
    """One subject's files.

    ``images``: canonical modality -> file. For a 4-D file holding several
    modalities (MSD), several modalities name the same file and ``channel_index``
    says which volume along the 4th axis each one is.
    ``label``: the label map, or None for unlabeled (validation/test) cases.
    ``label_scheme``: the scheme the layout implies (a hint; ``check`` verifies it).
    """

    case_id: str
    images: Mapping[str, Path]
    label: Path | None = None
    layout: str = "unknown"
    label_scheme: str | None = None
    channel_index: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Problems found while discovering (duplicate or unknown modality files)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.images) + tuple(
            m for m in self.images if m not in MODALITIES
        )


@dataclass
class CaseVolumes:
    """A loaded case.

    ``image``: ``(C, H, W, D)`` float32, channels in the order of ``channels``.
    ``label``: ``(H, W, D)`` integer label map or None. ``reference``: geometry of
    the first channel's file (affine, header, shape), used when writing outputs.
    """

    case_id: str
    image: np.ndarray
    channels: tuple[str, ...]
    label: np.ndarray | None
    reference: Image
    label_scheme: str | None = None

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.reference.spacing


def _read_channel(case: Case, modality: str, cache: dict) -> Image:
    path = case.images[modality]
    if path not in cache:
        cache[path] = read_image(path)
    img = cache[path]
    if modality in case.channel_index:
        if img.array.ndim != 4:
            raise CaseError(f"case {case.case_id}: {path} should be 4-D (one volume per modality),"
                            f" got shape {img.shape}")
        return Image(img.array[..., case.channel_index[modality]], img.affine, img.header, path)
    if img.array.ndim != 3:
        raise CaseError(f"case {case.case_id}: {modality} file {path} is {img.array.ndim}-D with shape "
                        f"{'x'.join(map(str, img.shape))}; expected a 3-D volume")
    return img


def load_case(case: Case, channels: Sequence[str] = MODALITIES, *, with_label: bool = True) -> CaseVolumes:
    """Read a case's modalities in the order ``channels`` (canonical names) and its label.

    Raises :class:`CaseError` naming the case and file for a missing modality or a
    shape mismatch. Run :func:`brats_seg.data.checks.check_case` for the full checks.
    """
    missing = [m for m in channels if m not in case.images]
    if missing:
        raise CaseError(f"case {case.case_id}: missing modality {', '.join(missing)}"
                        f" (found {', '.join(case.modalities) or 'none'})")
    cache: dict = {}
    vols = [_read_channel(case, m, cache) for m in channels]
    ref = vols[0]
    for m, v in zip(channels, vols):
        if v.shape != ref.shape:
            raise CaseError(f"case {case.case_id}: {m} has shape {'x'.join(map(str, v.shape))},"
                            f" {channels[0]} has {'x'.join(map(str, ref.shape))}")
    label = None
    if with_label and case.label is not None:
        lab = read_image(case.label, dtype=None)
        if lab.shape != ref.shape:
            raise CaseError(f"case {case.case_id}: label {case.label} has shape {'x'.join(map(str, lab.shape))},"
                            f" images have {'x'.join(map(str, ref.shape))}")
        label = np.asarray(lab.array)
        label = (np.rint(label) if label.dtype.kind == "f" else label).astype(np.uint8)
    image = np.stack([v.array for v in vols]).astype(np.float32, copy=False)
    return CaseVolumes(case.case_id, image, tuple(channels), label, ref, case.label_scheme)


# --------------------------------------------------------------------------- discovery helpers

LABEL_KEYS: frozenset[str] = frozenset({"seg", "label", "labels", "segmentation"})
"""File-name suffixes (BraTS layouts) and CSV column names that mean the label map."""

_LOOKS_LIKE_VOLUME_ROLE = re.compile(r"t1|t2|flair|seg|label")


def _modality_or_none(key: str) -> str | None:
    try:
        return canonical_modality(key)
    except BratsSegError:
        return None


def _volume_files(folder: Path) -> list[Path]:
    """Visible volume files of a folder, sorted (macOS ``._*`` and other dot files skipped)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and is_image_file(p))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class _CaseBuilder:
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


# --------------------------------------------------------------------------- BraTS folder layouts

@dataclass(frozen=True)
class _BratsNaming:
    """``<case>/<case><sep><suffix>.nii.gz`` with ``sep`` '_' (2017-2021) or '-' (2023+).

    A dataset folder holds one folder per case; a single case folder and a flat
    folder of several cases' files (grouped by the part before the suffix) work too.
    """

    sep: str
    hint: str

    def split(self, stem: str) -> tuple[str, str] | None:
        """(case prefix, role) when the file name ends in a modality or label suffix, else None."""
        if self.sep not in stem:
            return None
        prefix, key = stem.rsplit(self.sep, 1)
        key = key.lower()
        role = "label" if key in LABEL_KEYS else _modality_or_none(key)
        return (prefix, role) if prefix and role else None

    def _parsed(self, folder: Path) -> list[tuple[Path, tuple[str, str] | None]]:
        return [(f, self.split(strip_suffix(f))) for f in _volume_files(folder)]

    def read(self, root: Path, layout: str) -> list[Case]:
        if not root.is_dir():
            return []
        files = self._parsed(root)
        prefixes = {p[0] for _, p in files if p}
        if len(prefixes) == 1:  # root is one case folder
            return [self._case(prefixes.pop(), files, layout)]
        if prefixes:  # a flat folder of several cases' files
            return [self._case(cid, [(f, p) for f, p in files if strip_suffix(f).startswith(cid + self.sep)], layout)
                    for cid in sorted(prefixes)]
        cases = []
        for folder in _subfolders(root):
            files = self._parsed(folder)
            if any(p for _, p in files):
                cases.append(self._case(folder.name, files, layout))
        return cases

    def _case(self, case_id: str, files, layout: str) -> Case:
        b = _CaseBuilder(case_id)
        for f, parsed in files:
            stem = strip_suffix(f)
            if parsed:
                prefix, role = parsed
                if prefix != case_id:
                    b.problems.append(f"file {f.name} does not start with the case id {case_id}{self.sep}")
                b.add_label(f) if role == "label" else b.add_image(role, f)
            elif _LOOKS_LIKE_VOLUME_ROLE.search(stem.removeprefix(case_id).lower()):
                b.problems.append(f"unrecognised file {f.name} (expected suffixes "
                                  f"{', '.join(_SUFFIXES[self.sep])}, seg)")
        return b.build(layout, self.hint)


_SUFFIXES = {"_": ("t1", "t1ce", "t2", "flair"), "-": ("t1n", "t1c", "t2w", "t2f")}
_BRATS2021 = _BratsNaming("_", "brats2021")
_BRATS2023 = _BratsNaming("-", "brats2023")


def _brats_detect(naming: _BratsNaming) -> Callable[[Path], int]:
    return lambda root: len(naming.read(root, naming.hint))


def _brats_read(naming: _BratsNaming, layout: str) -> Callable[[Path], list[Case]]:
    return lambda root: naming.read(root, layout)


# --------------------------------------------------------------------------- MSD and nnU-Net

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_SPLITS = (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs"))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CaseError(f"{path}: unreadable dataset.json ({e})") from None
    if not isinstance(data, dict):
        raise CaseError(f"{path}: dataset.json should hold a JSON object")
    return data


def _channel_map(names: Mapping, source: Path) -> dict[str, int]:
    """dataset.json ``{"0": "FLAIR", ...}`` -> ``{"t2f": 0, ...}`` (canonical names)."""
    out: dict[str, int] = {}
    for index, name in names.items():
        try:
            modality = canonical_modality(str(name))
            channel = int(index)
        except (BratsSegError, ValueError):
            raise CaseError(f"{source}: channel {index!r} = {name!r} is not a known modality"
                            f" (expected names like T1, T1ce/T1Gd, T2, FLAIR)") from None
        if modality in out:
            raise CaseError(f"{source}: channels {out[modality]} and {channel} are both {modality}")
        out[modality] = channel
    return out


def _split_files(root: Path, channel_style: bool) -> list[tuple[str, Path]]:
    """(split, file) for image files in imagesTr/imagesTs named per nnU-Net (``_0000``) or not (MSD)."""
    out = []
    for images, _ in _SPLITS:
        for f in _volume_files(root / images):
            if bool(_CHANNEL_FILE.match(strip_suffix(f))) == channel_style:
                out.append((images, f))
    return out


def _label_files(root: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for _, labels in _SPLITS:
        for f in _volume_files(root / labels):
            out.setdefault(strip_suffix(f), []).append(f)
    return out


def _attach_labels(builders: dict[str, _CaseBuilder], root: Path) -> None:
    for case_id, files in _label_files(root).items():
        b = builders.setdefault(case_id, _CaseBuilder(case_id))
        if not b.images:
            b.problems.append(f"label {files[0].name} has no image files")
        for f in files:
            b.add_label(f)


def _msd_detect(root: Path) -> int:
    return len(_split_files(root, channel_style=False)) if root.is_dir() else 0


def _msd_read(root: Path) -> list[Case]:
    meta = root / "dataset.json"
    channels = (_channel_map(_read_json(meta).get("modality", {}), meta) if meta.is_file() else {})
    if not channels:  # no dataset.json: Task01_BrainTumour's documented order
        channels = {m: i for i, m in enumerate(MSD_CHANNEL_ORDER)}
    builders: dict[str, _CaseBuilder] = {}
    for _, f in _split_files(root, channel_style=False):
        b = builders.setdefault(strip_suffix(f), _CaseBuilder(strip_suffix(f)))
        if b.images:
            b.problems.append(f"duplicate image files: {next(iter(b.images.values())).name} and {f.name}")
            continue
        for modality in channels:
            b.images[modality] = f
    _attach_labels(builders, root)
    return [b.build("msd", "msd", channels) for b in builders.values()]


def _nnunet_detect(root: Path) -> int:
    if not root.is_dir():
        return 0
    return len({_CHANNEL_FILE.match(strip_suffix(f))["case"] for _, f in _split_files(root, channel_style=True)})


def scheme_from_dataset_labels(labels: Mapping) -> str | None:
    """The label scheme a dataset.json ``labels`` entry describes, or None when unclear.

    Accepts nnU-Net v1/MSD (``{"1": "edema", ...}``) and v2 (``{"edema": 1, ...}``,
    or region-based ``{"whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}``).
    The entry's regions WT/TC/ET are compared with each scheme's; only a unique match counts.
    """
    named: dict[str, list[int]] = {}
    try:
        for k, v in labels.items():
            if isinstance(v, str):  # v1: value -> name
                named[v.lower()] = [int(k)]
            else:  # v2: name -> value or list of values
                named[str(k).lower()] = [int(x) for x in (v if isinstance(v, list) else [v])]
    except (TypeError, ValueError, AttributeError):
        return None
    regions: dict[str, set[int]] = {"WT": set(), "TC": set(), "ET": set()}
    if any(len(v) > 1 for v in named.values()):  # region-based
        for name, values in named.items():
            for region, word in (("WT", "whole"), ("TC", "core"), ("ET", "enhanc")):
                if word in name and not name.startswith("non"):
                    regions[region] = set(values)
    else:
        for name, (value,) in named.items():
            if value == 0 or "background" in name:
                continue
            regions["WT"].add(value)
            if name == "et" or ("enhanc" in name and "non" not in name):
                regions["ET"].add(value)
                regions["TC"].add(value)
            elif name not in ("ed", "snfh") and not any(w in name for w in ("edema", "hyperintens")):
                regions["TC"].add(value)
    matches = [s.name for s in LABEL_SCHEMES.values()  # a scheme with labels outside WT (a cavity) cannot be told
               if s.nested and set(s.labels) == regions["WT"] and all(s.regions[r] == regions[r] for r in regions)]
    return matches[0] if len(matches) == 1 else None


def _nnunet_read(root: Path) -> list[Case]:
    meta = root / "dataset.json"
    if not meta.is_file():
        raise CaseError(f"{root}: nnU-Net layout needs dataset.json to name the channels (not found)")
    info = _read_json(meta)
    names = info.get("channel_names") or info.get("modality")
    if not isinstance(names, Mapping) or not names:
        raise CaseError(f"{meta}: no 'channel_names' (nnU-Net v2) or 'modality' (v1) entry")
    by_index = {i: m for m, i in _channel_map(names, meta).items()}
    hint = scheme_from_dataset_labels(info["labels"]) if isinstance(info.get("labels"), Mapping) else None
    builders: dict[str, _CaseBuilder] = {}
    for _, f in _split_files(root, channel_style=True):
        m = _CHANNEL_FILE.match(strip_suffix(f))
        b = builders.setdefault(m["case"], _CaseBuilder(m["case"]))
        channel = int(m["channel"])
        if channel in by_index:
            b.add_image(by_index[channel], f)
        else:
            b.problems.append(f"file {f.name} is channel {channel}, but dataset.json names channels "
                              f"{', '.join(str(i) for i in sorted(by_index))}")
    _attach_labels(builders, root)
    return [b.build("nnunet", hint) for b in builders.values()]


# --------------------------------------------------------------------------- CSV manifest

CASE_ID_COLUMNS = ("case_id", "case", "id", "subject", "subject_id")


def _csv_detect(root: Path) -> int:
    return 1 if root.is_file() and root.suffix.lower() == ".csv" else 0


def _csv_read(path: Path) -> list[Case]:
    if not _csv_detect(path):
        raise CaseError(f"{path}: the csv layout needs a .csv manifest file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CaseError(f"{path}: unreadable CSV manifest ({e})") from None
    if not rows:
        raise CaseError(f"{path}: empty CSV manifest")
    header = [h.strip().lower() for h in rows[0]]
    id_col = next((header.index(c) for c in CASE_ID_COLUMNS if c in header), None)
    if id_col is None:
        raise CaseError(f"{path}: no case id column (one of {', '.join(CASE_ID_COLUMNS)});"
                        f" columns: {', '.join(header)}")
    columns: dict[int, str] = {}  # column index -> modality, "label" or "label_scheme"
    for i, name in enumerate(header):
        role = "label" if name in LABEL_KEYS else "label_scheme" if name == "label_scheme" else _modality_or_none(name)
        if role is None or i == id_col:
            continue
        if role in columns.values():
            raise CaseError(f"{path}: two columns mean {role} ({rows[0][list(columns.values()).index(role)]!r}"
                            f" and {rows[0][i]!r})")
        columns[i] = role
    builders: dict[str, _CaseBuilder] = {}
    schemes: dict[str, str | None] = {}
    first_row: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        case_id = row[id_col].strip() if id_col < len(row) else ""
        if not case_id:
            raise CaseError(f"{path}: row {n} has no case id")
        if case_id in builders:
            builders[case_id].problems.append(f"listed twice in {path.name} (rows {first_row[case_id]} and {n});"
                                              " the second row is ignored")
            continue
        b = builders[case_id] = _CaseBuilder(case_id)
        first_row[case_id] = n
        schemes[case_id] = None
        for i, role in columns.items():
            cell = row[i].strip() if i < len(row) else ""
            if not cell:
                continue
            if role == "label_scheme":
                if cell.lower() in LABEL_SCHEMES:
                    schemes[case_id] = get_scheme(cell).name
                else:
                    b.problems.append(f"unknown label scheme {cell!r} in {path.name} row {n}"
                                      f" (valid: {', '.join(LABEL_SCHEMES)})")
                continue
            file = Path(cell).expanduser()
            file = file if file.is_absolute() else path.parent / file
            b.add_label(file) if role == "label" else b.add_image(role, file)
    return [b.build("csv", schemes[cid]) for cid, b in builders.items()]


# --------------------------------------------------------------------------- registry

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
           _brats_detect(_BRATS2021), _brats_read(_BRATS2021, "brats2021")),
    Layout("brats2023", "BraTS 2023+ folders: <case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz",
           _brats_detect(_BRATS2023), _brats_read(_BRATS2023, "brats2023")),
    Layout("msd", "Medical Segmentation Decathlon: dataset.json, 4-D imagesTr/<case>.nii.gz, labelsTr/<case>.nii.gz",
           _msd_detect, _msd_read),
    Layout("nnunet", "nnU-Net raw: dataset.json, imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz",
           _nnunet_detect, _nnunet_read),
    Layout("csv", "CSV manifest: columns case_id, t1n, t1c, t2w, t2f, optional label, label_scheme",
           _csv_detect, _csv_read),
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


def discover_cases(root: str | Path, layout: str | None = None) -> list[Case]:
    """Find the cases under ``root`` (a dataset folder, one case folder, or a CSV manifest).

    ``layout``: a name in :data:`LAYOUTS`, or None to detect it. A folder holding
    exactly one subfolder and no cases (an unpacked archive) is looked into.
    Returns the cases sorted by case id; unlabeled cases have ``label=None``.
    Raises :class:`CaseError` for a missing path or when no case is found.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise CaseError(f"{root}: no such file or folder")
    if root.is_file() and layout is None and not _csv_detect(root):
        raise CaseError(f"{root}: is a file; expected a dataset folder or a .csv manifest")
    chosen = get_layout(layout) if layout is not None else None
    if chosen is None:
        name = detect_layout(root)
        if name is None and root.is_dir():
            sub = _subfolders(root)
            if len(sub) == 1 and not _volume_files(root) and detect_layout(sub[0]) is not None:
                return discover_cases(sub[0])
        if name is None:
            raise CaseError(f"{root}: no recognisable cases (tried layouts {', '.join(LAYOUTS)})")
        chosen = LAYOUTS[name]
    cases = chosen.read(root)
    if not cases:
        raise CaseError(f"{root}: no cases in the {chosen.name} layout ({chosen.description})")
    return sorted(cases, key=lambda c: c.case_id)
