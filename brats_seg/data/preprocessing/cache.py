"""The preprocessing cache: the one module that writes, reads, lists and recognises it.

::

    CACHE/<case_id>_image.npy   (C, h, w, d) float32, uncompressed (memory-mappable)
    CACHE/<case_id>_label.npy   (h, w, d) uint8 in the case's own label scheme (labelled cases)
    CACHE/<case_id>.json        properties: case_id, channels, label_scheme, geometry, fingerprint, ...
    CACHE/dataset.json          {"config", "channels", "version", "cases", "failed"}

The per-case JSON is written last and removed first, so it marks a complete entry; every
file goes to a temporary name and is renamed into place. Reading is strict: a
``dataset.json`` without its preprocessing config or channel names, an unknown channel
name, or a labelled case without its label scheme is a :class:`CaseError` naming the file
and the key (a model trained on defaults would record a preprocessing the data never had).
"""

from __future__ import annotations

import dataclasses
import glob
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...config import PreprocessConfig, from_dict
from ...conventions import LABEL_SCHEMES, labels_to_regions
from ...errors import CaseError
from ...files import atomic_path
from ..reading.cases import known_modality
from ..reading.image_io import read_json_object

INDEX = "dataset.json"
REBUILD = "re-run `brats-seg preprocess` to rebuild the cache"


@dataclass
class Preprocessed:
    """A preprocessed case: ``image`` ``(C, h, w, d)`` float32, ``label`` ``(h, w, d)`` uint8 in the
    scheme ``properties["label_scheme"]`` or None, ``properties`` JSON-able geometry and provenance
    (see :func:`brats_seg.data.preprocessing.preprocess.preprocess_volumes`). Arrays may be memory-mapped."""

    image: np.ndarray
    label: np.ndarray | None
    properties: dict[str, Any]

    @property
    def case_id(self) -> str:
        return self.properties["case_id"]

    @property
    def label_scheme(self) -> str | None:
        return self.properties.get("label_scheme")

    def regions(self) -> np.ndarray:
        """Nested region masks ``(3, h, w, d)`` bool (WT, TC, ET) in the case's scheme."""
        if self.label is None:
            raise CaseError(f"case {self.case_id}: no label in the cache")
        return labels_to_regions(np.asarray(self.label), self.label_scheme)


def entry_paths(folder: str | Path, case_id: str) -> dict[str, Path]:
    """The files of one case's entry: ``image``, ``label``, ``json``."""
    folder = Path(folder)
    return {"image": folder / f"{case_id}_image.npy", "label": folder / f"{case_id}_label.npy",
            "json": folder / f"{case_id}.json"}


def is_cache(folder: str | Path) -> bool:
    """Whether ``folder`` looks like a preprocessing cache (an index and at least one image)."""
    folder = Path(folder)
    return (folder / INDEX).is_file() and any(folder.glob("*_image.npy"))


# --------------------------------------------------------------------------- reading

def _required(path: Path, data: dict, key: str, kind: type, meaning: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or not value:
        raise CaseError(f"{path}: no {key!r} entry ({meaning}); {REBUILD}")
    return value


def _channels(path: Path, names: list) -> list[str]:
    channels = [known_modality(str(n), path) for n in names]
    if len(set(channels)) != len(channels):
        raise CaseError(f"{path}: channels {names} name one modality twice; {REBUILD}")
    return channels


def read_index(folder: str | Path) -> dict[str, Any]:
    """``CACHE/dataset.json``, checked: ``config`` (every :class:`PreprocessConfig` field),
    ``channels`` (known names, returned canonical) and ``cases`` must be there."""
    folder = Path(folder)
    path = folder / INDEX
    if not path.is_file():
        raise CaseError(f"{folder}: not a preprocessing cache (no {INDEX}); run `brats-seg preprocess` first")
    index = read_json_object(path, f"; {REBUILD}")
    config = _required(path, index, "config", dict, "the preprocessing config")
    missing = [f.name for f in dataclasses.fields(PreprocessConfig) if f.name not in config]
    if missing:
        raise CaseError(f"{path}: the preprocessing 'config' lacks {', '.join(missing)}; {REBUILD}")
    from_dict(PreprocessConfig, config, source=f"{path} config")
    channels = _channels(path, _required(path, index, "channels", list, "the input channel names"))
    cases = index.get("cases")
    if not isinstance(cases, list) or not all(isinstance(c, str) for c in cases):
        raise CaseError(f"{path}: no 'cases' entry (the list of cached case ids); {REBUILD}")
    return {**index, "channels": channels}


def cached_case_ids(folder: str | Path, *, labelled: bool = False) -> list[str]:
    """Case ids listed in the cache's index (``labelled``: only those with a label map)."""
    ids = read_index(folder)["cases"]
    return [c for c in ids if entry_paths(folder, c)["label"].is_file()] if labelled else ids


def cached_config(folder: str | Path) -> PreprocessConfig:
    """The :class:`PreprocessConfig` the cache was made with."""
    return from_dict(PreprocessConfig, read_index(folder)["config"], source=str(Path(folder) / INDEX))


def _properties(path: Path, case_id: str, has_label: bool) -> dict[str, Any]:
    props = read_json_object(path, f"; {REBUILD}")
    if props.setdefault("case_id", case_id) != case_id:
        raise CaseError(f"{path}: names case {props['case_id']!r}, not {case_id!r}; {REBUILD}")
    if "channels" in props:
        props["channels"] = _channels(path, list(props["channels"]))
    if has_label:
        scheme = props.get("label_scheme")
        if not scheme:
            raise CaseError(f"{path}: no 'label_scheme' entry for the labelled case; {REBUILD}")
        if scheme not in LABEL_SCHEMES:
            raise CaseError(f"{path}: unknown label_scheme {scheme!r} (valid: {', '.join(LABEL_SCHEMES)})")
    elif props.get("has_label"):
        raise CaseError(f"{path}: the case has a label but {entry_paths(path.parent, case_id)['label'].name}"
                        f" is missing; {REBUILD}")
    return props


def load_cached(folder: str | Path, case_id: str, *, mmap: bool = True) -> Preprocessed:
    """Read one case's entry; ``mmap=True`` maps the arrays read-only instead of reading them."""
    paths = entry_paths(folder, case_id)
    if not paths["json"].is_file() or not paths["image"].is_file():
        raise CaseError(f"{paths['json']}: no preprocessed case {case_id!r} in {folder}"
                        f" (need {paths['image'].name} and {paths['json'].name})")
    has_label = paths["label"].is_file()
    props = _properties(paths["json"], case_id, has_label)
    mode = "r" if mmap else None
    try:
        image = np.load(paths["image"], mmap_mode=mode, allow_pickle=False)
        label = np.load(paths["label"], mmap_mode=mode, allow_pickle=False) if has_label else None
    except (OSError, ValueError) as e:
        raise CaseError(f"case {case_id}: unreadable cache entry in {folder} ({e}); {REBUILD}") from None
    if image.ndim != 4 or (label is not None and label.shape != image.shape[1:]):
        raise CaseError(f"case {case_id}: cached image {image.shape} and label "
                        f"{None if label is None else label.shape} do not match")
    return Preprocessed(image, label, props)


def entry_fingerprint(folder: str | Path, case_id: str) -> str | None:
    """The fingerprint of a complete entry (None when absent, incomplete or unreadable)."""
    paths = entry_paths(folder, case_id)
    try:
        props = json.loads(paths["json"].read_text())
    except (OSError, ValueError):
        return None
    complete = paths["image"].is_file() and (paths["label"].is_file() or not props.get("has_label"))
    return props.get("fingerprint") if complete else None


def cache_nbytes(folder: str | Path, case_ids: Sequence[str]) -> int:
    """Bytes of the cases' arrays on disk."""
    return sum(p.stat().st_size for c in case_ids for k, p in entry_paths(folder, c).items()
               if k != "json" and p.is_file())


# --------------------------------------------------------------------------- writing

def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def write_cached(folder: str | Path, pre: Preprocessed) -> None:
    """Write one case's entry atomically (JSON last: it marks a complete entry)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = entry_paths(folder, pre.case_id)
    paths["json"].unlink(missing_ok=True)  # invalid until the new arrays are in place
    _save_npy(paths["image"], pre.image.astype(np.float32, copy=False))
    if pre.label is not None:
        _save_npy(paths["label"], pre.label.astype(np.uint8, copy=False))
    else:
        paths["label"].unlink(missing_ok=True)
    _write_json(paths["json"], pre.properties)


def remove_entry(folder: str | Path, case_id: str) -> None:
    """Delete one case's entry, and temporaries a killed run left behind."""
    for p in entry_paths(folder, case_id).values():
        p.unlink(missing_ok=True)
    for stale in glob.glob(str(Path(folder) / f".{glob.escape(case_id)}*.tmp*")):
        Path(stale).unlink(missing_ok=True)


def write_index(folder: str | Path, config: dict[str, Any], channels: Sequence[str], cases: Sequence[str], *,
                version: int, failed: dict[str, str] | None = None) -> None:
    """Write ``CACHE/dataset.json`` (atomically)."""
    _write_json(Path(folder) / INDEX, {"config": config, "channels": list(channels), "version": version,
                                       "cases": list(cases), "failed": dict(sorted((failed or {}).items()))})
