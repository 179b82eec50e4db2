"""Preprocessing: crop to the brain, optional N4 and resampling, per-channel normalization,
and the ``.npy`` cache that training reads.

The steps follow nnU-Net's preprocessing (Isensee et al., Nature Methods 2021):
crop to the bounding box of the nonzero voxels (BraTS scans are skull-stripped,
so this is the brain), resample to a target spacing (cubic spline for images,
nearest neighbour for labels), then normalize each channel (z-score inside the
brain by default, see :mod:`brats_seg.data.normalization`).

Everything needed to undo the geometry is kept in ``properties`` (JSON-able):
:func:`restore` puts a prediction ``(..., h, w, d)`` back into the original
``(H, W, D)`` grid exactly (inverse resampling to the cropped shape, then
zero-padding into the box).

Cache layout written by :func:`preprocess_dataset`::

    OUT/<case_id>_image.npy   (C, h, w, d) float32, uncompressed (memory-mappable)
    OUT/<case_id>_label.npy   (h, w, d) uint8, in the case's own label scheme
    OUT/<case_id>.json        properties, with a fingerprint of the inputs and config
    OUT/dataset.json          {"config", "channels", "cases", "failed", ...}

The per-case JSON is written last and removed first, so it marks a complete
entry; every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import glob
import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PreprocessConfig, from_dict, to_dict
from ..conventions import MODALITIES, detect_scheme
from ..errors import BratsSegError, CaseError
from .cases import Case, CaseVolumes, load_case
from .io import atomic_path, n4_bias_correction
from .normalization import get_normalizer

PREPROCESS_VERSION = 1
"""Bumped whenever the cache's content would change for the same inputs and config."""


@dataclass
class Preprocessed:
    """A preprocessed case.

    ``image``: ``(C, h, w, d)`` float32; ``label``: ``(h, w, d)`` uint8 in the
    scheme named by ``properties["label_scheme"]``, or None; ``properties``:
    JSON-able geometry and provenance (see :func:`preprocess_volumes`).
    """

    image: np.ndarray
    label: np.ndarray | None
    properties: dict[str, Any]

    @property
    def case_id(self) -> str:
        return self.properties["case_id"]


# --------------------------------------------------------------------------- geometry helpers

def foreground_bbox(image: np.ndarray, label: np.ndarray | None = None, margin: int = 0) -> list[list[int]]:
    """Bounding box ``[[lo, hi], x3]`` (hi exclusive) of voxels nonzero in any channel of
    ``image`` ``(C, H, W, D)`` or in ``label`` ``(H, W, D)``, grown by ``margin`` voxels
    and clipped to the grid. Raises :class:`CaseError` if everything is zero."""
    mask = np.any(image != 0, axis=0)
    if label is not None:
        mask |= label != 0
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=others))
        if hits.size == 0:
            raise CaseError("all channels are zero; nothing to crop to")
        lo = max(0, int(hits[0]) - margin)
        hi = min(mask.shape[axis], int(hits[-1]) + 1 + margin)
        box.append([lo, hi])
    return box


def _slices(bbox: Sequence[Sequence[int]]) -> tuple[slice, ...]:
    return tuple(slice(int(lo), int(hi)) for lo, hi in bbox)


def resample(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resample the last three axes of ``array`` ``(..., h, w, d)`` to ``shape`` exactly.

    Grid-aligned (``grid_mode=True``): voxel edges of input and output coincide, so a
    resampled volume covers the same physical extent. ``order`` 0 (nearest, labels),
    1 (linear, probabilities) or 3 (cubic spline, images). Keeps the dtype.
    """
    from scipy import ndimage

    shape = tuple(int(s) for s in shape)
    if tuple(array.shape[-3:]) == shape:
        return array
    factors = np.asarray(shape, dtype=np.float64) / np.asarray(array.shape[-3:], dtype=np.float64)
    flat = array.reshape((-1, *array.shape[-3:]))
    out = np.empty((flat.shape[0], *shape), dtype=array.dtype)
    for i, vol in enumerate(flat):
        res = ndimage.zoom(vol, factors, order=order, mode="nearest", grid_mode=True, prefilter=order > 1)
        if res.shape != shape:  # zoom rounds the output size; guard against an off-by-one
            raise BratsSegError(f"resampling produced shape {res.shape}, expected {shape}")
        out[i] = res
    return out.reshape((*array.shape[:-3], *shape))


def preprocessed_affine(properties: dict[str, Any]) -> np.ndarray:
    """4x4 voxel -> world affine of the preprocessed grid ``(h, w, d)``: the original affine
    shifted to the crop box and scaled by the resampling (voxel edges aligned)."""
    affine = np.asarray(properties["affine"], dtype=np.float64)
    lo = np.array([b[0] for b in properties["bbox"]], dtype=np.float64)
    f = np.asarray(properties["cropped_shape"], dtype=np.float64) / np.asarray(properties["shape"], dtype=np.float64)
    vox = np.eye(4)
    vox[:3, :3] = np.diag(f)
    vox[:3, 3] = lo + (f - 1) / 2  # new voxel i has its centre at old voxel lo + (i + 0.5) f - 0.5
    return affine @ vox


def target_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    """Grid size that covers the same extent at ``new_spacing`` (rounded, at least 1)."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))


# --------------------------------------------------------------------------- one case

def preprocess_volumes(vol: CaseVolumes, cfg: PreprocessConfig | None = None) -> Preprocessed:
    """Crop, (N4,) resample and normalize one loaded case.

    ``vol.image`` ``(C, H, W, D)`` -> ``Preprocessed.image`` ``(C, h, w, d)`` float32.
    ``properties``: ``case_id``, ``channels``, ``label_scheme``, ``original_shape``,
    ``original_spacing``, ``affine`` (4x4 of the original grid), ``bbox`` ``[[lo, hi]]x3``
    (hi exclusive, in original voxels), ``cropped_shape``, ``shape`` (final),
    ``spacing`` (final, exact: the grid is rounded, so it can differ slightly from
    ``target_spacing``), ``preprocessed_affine`` (4x4 of the final grid), ``normalization``,
    ``config``, ``version``.
    Raises :class:`BratsSegError` naming the case on any problem.
    """
    cfg = cfg or PreprocessConfig()
    try:
        return _preprocess(vol, cfg)
    except BratsSegError as e:
        msg = str(e)
        raise type(e)(msg if msg.startswith(f"case {vol.case_id}") else f"case {vol.case_id}: {msg}") from None


def _preprocess(vol: CaseVolumes, cfg: PreprocessConfig) -> Preprocessed:
    image, label = vol.image, vol.label
    if image.ndim != 4:
        raise CaseError(f"expected image of shape (C, H, W, D), got {image.shape}")
    original_shape = tuple(int(s) for s in image.shape[1:])
    if cfg.crop:
        bbox = foreground_bbox(image, label)
    else:
        bbox = [[0, n] for n in original_shape]
    sl = _slices(bbox)
    image = np.ascontiguousarray(image[(slice(None), *sl)], dtype=np.float32)
    label = None if label is None else np.ascontiguousarray(label[sl], dtype=np.uint8)
    mask = np.any(image != 0, axis=0)

    if cfg.n4:
        image = np.stack([n4_bias_correction(ch, mask) for ch in image])

    cropped_shape = tuple(int(s) for s in image.shape[1:])
    original_spacing = tuple(float(s) for s in vol.spacing[:3])
    spacing = original_spacing
    if cfg.spacing is not None:
        if len(cfg.spacing) != 3 or min(cfg.spacing) <= 0:
            raise BratsSegError(f"target spacing must be three positive numbers, got {cfg.spacing}")
        spacing = tuple(float(s) for s in cfg.spacing)
        shape = target_shape(cropped_shape, original_spacing, spacing)
        if shape != cropped_shape:
            image = resample(image, shape, order=3)
            mask = resample(mask.view(np.uint8), shape, order=0).astype(bool)
            label = None if label is None else resample(label, shape, order=0)
        spacing = tuple(o * c / n for o, c, n in zip(original_spacing, cropped_shape, shape))

    normalizer = get_normalizer(cfg.normalization, clip_percentiles=tuple(cfg.clip_percentiles))
    if cfg.normalization != "none":
        image = np.stack([normalizer(ch, mask, channel=name) for ch, name in zip(image, vol.channels)])
    image = image.astype(np.float32, copy=False)

    scheme = vol.label_scheme
    if label is not None:
        values = np.flatnonzero(np.bincount(label.ravel(), minlength=1))
        scheme = detect_scheme(values, vol.label_scheme, case_id=vol.case_id)

    properties = {
        "case_id": vol.case_id,
        "channels": list(vol.channels),
        "label_scheme": scheme,
        "has_label": label is not None,
        "original_shape": list(original_shape),
        "original_spacing": list(original_spacing),
        "affine": np.asarray(vol.reference.affine, dtype=float).tolist(),
        "bbox": [[int(lo), int(hi)] for lo, hi in bbox],
        "cropped_shape": list(cropped_shape),
        "shape": [int(s) for s in image.shape[1:]],
        "spacing": [float(s) for s in spacing],
        "target_spacing": None if cfg.spacing is None else [float(s) for s in cfg.spacing],
        "normalization": cfg.normalization,
        "config": to_dict(cfg),
        "version": PREPROCESS_VERSION,
    }
    properties["preprocessed_affine"] = preprocessed_affine(properties).tolist()
    return Preprocessed(image, label, properties)


def preprocess_case(case: Case, cfg: PreprocessConfig | None = None,
                    channels: Sequence[str] = MODALITIES) -> Preprocessed:
    """Load ``case`` (channels in the order ``channels``) and preprocess it."""
    return preprocess_volumes(load_case(case, channels), cfg)


def restore(array: np.ndarray, properties: dict[str, Any], order: int = 0) -> np.ndarray:
    """Put ``array`` ``(..., h, w, d)`` (a prediction on the preprocessed grid) back into
    the original ``(..., H, W, D)`` grid: resample to the cropped shape (``order`` 0 for
    labels, 1 for probabilities), then zero-pad into the crop box. Keeps the dtype."""
    array = np.asarray(array)
    shape = tuple(properties["shape"])
    if tuple(array.shape[-3:]) != shape:
        raise BratsSegError(
            f"case {properties.get('case_id')}: array of shape {array.shape} does not end in the"
            f" preprocessed shape {shape}"
        )
    array = resample(array, properties["cropped_shape"], order)
    out = np.zeros((*array.shape[:-3], *properties["original_shape"]), dtype=array.dtype)
    out[(Ellipsis, *_slices(properties["bbox"]))] = array
    return out


# --------------------------------------------------------------------------- the cache

@dataclass
class PreprocessReport:
    """What :func:`preprocess_dataset` did. ``failed``: case id -> one-line reason."""

    out: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        parts = [f"{len(self.done)} preprocessed", f"{len(self.skipped)} up to date (skipped)",
                 f"{len(self.failed)} failed"]
        if self.seconds:
            parts.append(f"{np.mean(list(self.seconds.values())):.1f} s/case")
        return f"{self.out}: " + ", ".join(parts)


def _paths(out: Path, case_id: str) -> dict[str, Path]:
    return {"image": out / f"{case_id}_image.npy", "label": out / f"{case_id}_label.npy",
            "json": out / f"{case_id}.json"}


def _input_files(case: Case, channels: Sequence[str]) -> list[Path]:
    files = {case.images[m] for m in channels if m in case.images}
    if case.label is not None:
        files.add(case.label)
    return sorted(Path(f) for f in files)


def fingerprint(case: Case, cfg: PreprocessConfig, channels: Sequence[str]) -> str:
    """Hash of the inputs (path, size, mtime of each file), the config, the channel
    order and :data:`PREPROCESS_VERSION`: a cache entry with the same hash is up to date."""
    files = []
    for f in _input_files(case, channels):
        try:
            st = f.stat()
            files.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([str(f), None, None])
    blob = json.dumps({"files": files, "config": to_dict(cfg), "channels": list(channels),
                       "label_scheme": case.label_scheme, "version": PREPROCESS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _up_to_date(out: Path, case_id: str, fp: str) -> bool:
    paths = _paths(out, case_id)
    try:
        props = json.loads(paths["json"].read_text())
    except (OSError, ValueError):
        return False
    if props.get("fingerprint") != fp or not paths["image"].is_file():
        return False
    return paths["label"].is_file() or not props.get("has_label")


def _remove_entry(out: Path, case_id: str) -> None:
    for p in _paths(out, case_id).values():
        p.unlink(missing_ok=True)
    for stale in glob.glob(str(out / f".{glob.escape(case_id)}*.tmp*")):  # from a killed run
        Path(stale).unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def write_cached(out: str | Path, pre: Preprocessed) -> None:
    """Write one case's cache entry atomically (JSON last: it marks a complete entry)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = _paths(out, pre.case_id)
    paths["json"].unlink(missing_ok=True)  # invalid until the new arrays are in place
    _save_npy(paths["image"], pre.image.astype(np.float32, copy=False))
    if pre.label is not None:
        _save_npy(paths["label"], pre.label.astype(np.uint8, copy=False))
    else:
        paths["label"].unlink(missing_ok=True)
    _write_json(paths["json"], pre.properties)


def load_cached(out: str | Path, case_id: str, mmap: bool = True) -> Preprocessed:
    """Read a cache entry; ``mmap=True`` maps the arrays read-only instead of reading them."""
    paths = _paths(Path(out), case_id)
    if not paths["json"].is_file():
        raise CaseError(f"{paths['json']}: no preprocessed case {case_id!r} in {out}")
    try:
        props = json.loads(paths["json"].read_text())
        mode = "r" if mmap else None
        image = np.load(paths["image"], mmap_mode=mode, allow_pickle=False)
        label = np.load(paths["label"], mmap_mode=mode, allow_pickle=False) if props.get("has_label") else None
    except (OSError, ValueError) as e:
        raise CaseError(f"case {case_id}: unreadable cache entry in {out} ({e})") from None
    return Preprocessed(image, label, props)


def cached_config(out: str | Path) -> PreprocessConfig:
    """The :class:`PreprocessConfig` recorded in ``OUT/dataset.json``."""
    path = Path(out) / "dataset.json"
    try:
        return from_dict(PreprocessConfig, json.loads(path.read_text())["config"], source=str(path))
    except (OSError, ValueError, KeyError) as e:
        raise CaseError(f"{path}: not a preprocessed dataset ({e.__class__.__name__})") from None


def _process_one(case: Case, cfg: PreprocessConfig, channels: tuple[str, ...], out: Path,
                 fp: str) -> tuple[str, str | None, float]:
    """Worker: preprocess and write one case. Returns (case_id, error or None, seconds)."""
    t0 = time.perf_counter()
    try:
        if case.problems:  # e.g. two files for one modality: which one is meant is unknown
            raise CaseError(f"case {case.case_id}: {'; '.join(case.problems)}")
        pre = preprocess_case(case, cfg, channels)
        pre.properties["fingerprint"] = fp
        pre.properties["inputs"] = [str(f) for f in _input_files(case, channels)]
        pre.properties["seconds"] = round(time.perf_counter() - t0, 3)
        write_cached(out, pre)
        return case.case_id, None, time.perf_counter() - t0
    except Exception as e:  # report every failure and go on with the other cases
        _remove_entry(out, case.case_id)
        msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        if not isinstance(e, BratsSegError):
            msg = f"{e.__class__.__name__}: {msg}"
        if not msg.startswith(f"case {case.case_id}"):
            msg = f"case {case.case_id}: {msg}"
        return case.case_id, msg, time.perf_counter() - t0


def preprocess_dataset(root_or_cases: str | Path | Sequence[Case], out: str | Path,
                       cfg: PreprocessConfig | None = None, *, layout: str | None = None,
                       channels: Sequence[str] = MODALITIES, workers: int = 2,
                       progress: bool = True) -> PreprocessReport:
    """Preprocess every case of a dataset folder (or a list of :class:`Case`) into ``out``.

    Idempotent: a case whose inputs (size, mtime), config and channels are unchanged is
    skipped. Cases run in ``workers`` processes (1: in this process). A failing case is
    reported in ``report.failed`` (and leaves no files behind); the others are still done.
    """
    from tqdm.auto import tqdm

    cfg = cfg or PreprocessConfig()
    get_normalizer(cfg.normalization, clip_percentiles=tuple(cfg.clip_percentiles))  # bad config fails early
    if isinstance(root_or_cases, (str, Path)):
        from .cases import discover_cases

        cases = list(discover_cases(root_or_cases, layout=layout))
    else:
        cases = list(root_or_cases)
    if not cases:
        raise BratsSegError(f"{root_or_cases}: no cases found")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    channels = tuple(channels)
    report = PreprocessReport(out)

    todo = []
    for case in cases:
        fp = fingerprint(case, cfg, channels)
        if _up_to_date(out, case.case_id, fp):
            report.skipped.append(case.case_id)
        else:
            todo.append((case, fp))

    bar = tqdm(total=len(todo), desc="preprocess", unit="case", disable=not progress or not todo)

    def record(result: tuple[str, str | None, float]) -> None:
        case_id, error, seconds = result
        if error is None:
            report.done.append(case_id)
            report.seconds[case_id] = seconds
        else:
            report.failed[case_id] = error
        bar.update(1)

    if workers <= 1 or len(todo) <= 1:
        for case, fp in todo:
            record(_process_one(case, cfg, channels, out, fp))
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = [pool.submit(_process_one, case, cfg, channels, out, fp) for case, fp in todo]
            for fut in as_completed(futures):
                record(fut.result())
    bar.close()

    ok = {*report.done, *report.skipped}
    _write_json(out / "dataset.json", {
        "config": to_dict(cfg),
        "channels": list(channels),
        "version": PREPROCESS_VERSION,
        "cases": [c.case_id for c in cases if c.case_id in ok],
        "failed": dict(sorted(report.failed.items())),
    })
    return report


__all__ = [
    "Preprocessed", "PreprocessReport", "foreground_bbox", "resample", "target_shape", "preprocess_volumes",
    "preprocess_case", "preprocessed_affine", "restore", "preprocess_dataset", "load_cached", "write_cached",
    "cached_config", "fingerprint", "PREPROCESS_VERSION",
]
