"""Preprocessing: crop to the brain, optional N4 and resampling, per-channel normalization,
written to the ``.npy`` cache (:mod:`brats_seg.data.preprocessing.cache`) that training reads.

The steps follow nnU-Net's preprocessing (Isensee et al., Nature Methods 2021):
crop to the bounding box of the nonzero voxels (BraTS scans are skull-stripped,
so this is the brain), resample to a target spacing (cubic spline for images,
nearest neighbour for labels), then normalize each channel (z-score inside the
brain by default, see :mod:`brats_seg.data.preprocessing.normalization`).

Everything needed to undo the geometry is kept in ``properties`` (JSON-able):
:func:`brats_seg.data.preprocessing.grid.restore` puts a prediction ``(..., h, w, d)`` back into
the original ``(H, W, D)`` grid exactly.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_fill_holes

from ...config import PreprocessConfig, to_dict
from ...conventions import MODALITIES, detect_scheme
from ...errors import BatchOutcome, BratsSegError, CaseError
from ..reading.cases import Case, CaseVolumes
from ..reading.image_io import n4_bias_correction
from ..reading.intensity import intensity_stats
from ..reading.layouts import discover_cases
from ..reading.volumes import load_case
from .cache import Preprocessed, entry_fingerprint, remove_entry, write_cached, write_index
from .grid import box_slices, foreground_bbox, preprocessed_affine, resample, target_shape
from .normalization import get_normalizer

PREPROCESS_VERSION = 1
"""Bumped whenever the cache's content would change for the same inputs and config."""


# --------------------------------------------------------------------------- one case

def preprocess_volumes(vol: CaseVolumes, cfg: PreprocessConfig | None = None, *,
                       scheme_given: bool = False) -> Preprocessed:
    """Crop, (N4,) resample and normalize one loaded case.

    ``vol.image`` ``(C, H, W, D)`` -> ``Preprocessed.image`` ``(C, h, w, d)`` float32.
    ``properties``: ``case_id``, ``channels``, ``label_scheme``, ``original_shape``,
    ``original_spacing``, ``affine`` (4x4 of the original grid), ``bbox`` ``[[lo, hi]]x3``
    (hi exclusive, in original voxels), ``cropped_shape``, ``shape`` (final),
    ``spacing`` (final, exact: the grid is rounded, so it can differ slightly from
    ``target_spacing``), ``preprocessed_affine`` (4x4 of the final grid), ``normalization``,
    ``config``, ``version``.
    ``scheme_given``: ``vol.label_scheme`` was stated (``--label-scheme``), not detected again.
    Raises :class:`BratsSegError` naming the case on any problem.
    """
    cfg = cfg or PreprocessConfig()
    try:
        return _preprocess(vol, cfg, scheme_given)
    except BratsSegError as e:
        msg = str(e)
        raise type(e)(msg if msg.startswith(f"case {vol.case_id}") else f"case {vol.case_id}: {msg}") from None


@dataclass
class _Grid:
    """A case on its way through the steps: ``image`` (C, h, w, d), ``label``, brain ``mask``."""

    image: np.ndarray
    label: np.ndarray | None
    mask: np.ndarray
    bbox: list[list[int]]


def _crop(vol: CaseVolumes, cfg: PreprocessConfig) -> _Grid:
    image, label = vol.image, vol.label
    bbox = foreground_bbox(image, label) if cfg.crop else [[0, int(n)] for n in image.shape[1:]]
    sl = box_slices(bbox)
    image = np.ascontiguousarray(image[(slice(None), *sl)], dtype=np.float32)
    label = None if label is None else np.ascontiguousarray(label[sl], dtype=np.uint8)
    return _Grid(image, label, np.any(image != 0, axis=0), bbox)


def _resample(grid: _Grid, spacing: tuple[float, ...], cfg: PreprocessConfig) -> tuple[float, ...]:
    """Resample ``grid`` in place to ``cfg.spacing``; returns the exact final spacing."""
    if cfg.spacing is None:
        return spacing
    if len(cfg.spacing) != 3 or min(cfg.spacing) <= 0:
        raise BratsSegError(f"target spacing must be three positive numbers, got {cfg.spacing}")
    cropped = tuple(int(s) for s in grid.image.shape[1:])
    shape = target_shape(cropped, spacing, tuple(float(s) for s in cfg.spacing))
    if shape != cropped:
        grid.image = resample(grid.image, shape, order=3)
        grid.mask = resample(grid.mask.view(np.uint8), shape, order=0).astype(bool)
        grid.label = None if grid.label is None else resample(grid.label, shape, order=0)
    return tuple(o * c / n for o, c, n in zip(spacing, cropped, shape))


def _normalize(grid: _Grid, channels: Sequence[str], cfg: PreprocessConfig) -> None:
    normalizer = get_normalizer(cfg.normalization, clip_percentiles=tuple(cfg.clip_percentiles))
    if cfg.normalization != "none":
        grid.image = np.stack([normalizer(ch, grid.mask, channel=name) for ch, name in zip(grid.image, channels)])
    grid.image = grid.image.astype(np.float32, copy=False)


def _preprocess(vol: CaseVolumes, cfg: PreprocessConfig, scheme_given: bool = False) -> Preprocessed:
    if vol.image.ndim != 4:
        raise CaseError(f"expected image of shape (C, H, W, D), got {vol.image.shape}")
    grid = _crop(vol, cfg)
    intensity = intensity_stats(grid.image, vol.channels, grid.mask)  # raw, inside the brain
    if cfg.n4:
        grid.image = np.stack([n4_bias_correction(ch, grid.mask) for ch in grid.image])
    cropped_shape = [int(s) for s in grid.image.shape[1:]]
    original_spacing = tuple(float(s) for s in vol.spacing[:3])
    first = getattr(get_normalizer(cfg.normalization), "before_resampling", False)
    if first:  # nnU-Net's order and mask: normalize on the cropped grid, holes of the nonzero mask filled
        grid.mask = binary_fill_holes(grid.mask)
        _normalize(grid, vol.channels, cfg)
    spacing = _resample(grid, original_spacing, cfg)
    if not first:
        _normalize(grid, vol.channels, cfg)
    scheme = vol.label_scheme
    if grid.label is not None:
        values = np.flatnonzero(np.bincount(grid.label.ravel(), minlength=1))
        scheme = vol.label_scheme if scheme_given else detect_scheme(values, vol.label_scheme, case_id=vol.case_id)
    properties = {
        "case_id": vol.case_id, "channels": list(vol.channels), "label_scheme": scheme,
        "has_label": grid.label is not None,
        "original_shape": [int(s) for s in vol.image.shape[1:]], "original_spacing": list(original_spacing),
        "affine": np.asarray(vol.reference.affine, dtype=float).tolist(),
        "bbox": [[int(lo), int(hi)] for lo, hi in grid.bbox], "cropped_shape": cropped_shape,
        "shape": [int(s) for s in grid.image.shape[1:]], "spacing": [float(s) for s in spacing],
        "target_spacing": None if cfg.spacing is None else [float(s) for s in cfg.spacing],
        "normalization": cfg.normalization, "config": to_dict(cfg), "version": PREPROCESS_VERSION,
        "intensity": intensity,
    }
    properties["preprocessed_affine"] = preprocessed_affine(properties).tolist()
    return Preprocessed(grid.image, grid.label, properties)


def preprocess_case(case: Case, cfg: PreprocessConfig | None = None,
                    channels: Sequence[str] = MODALITIES) -> Preprocessed:
    """Load ``case`` (channels in the order ``channels``) through every check of ``brats-seg check``
    (:func:`~brats_seg.data.reading.volumes.load_case`: a case with any problem raises :class:`CaseError`)
    and preprocess it."""
    return preprocess_volumes(load_case(case, channels), cfg, scheme_given=case.scheme_given)


# --------------------------------------------------------------------------- a dataset into the cache

@dataclass
class PreprocessReport(BatchOutcome):
    """What :func:`preprocess_dataset` did into the cache ``out`` (a :class:`BatchOutcome`:
    ``skipped`` are the cases already up to date)."""

    out: Path | None = None

    def summary(self) -> str:
        parts = [f"{len(self.done)} preprocessed", f"{len(self.skipped)} up to date (skipped)",
                 f"{len(self.failed)} failed"]
        if self.seconds:
            parts.append(f"{np.mean(list(self.seconds.values())):.1f} s/case")
        return f"{self.out}: " + ", ".join(parts)

    def record(self, case_id: str, error: str | None, seconds: float) -> None:
        if error is None:
            self.succeed(case_id, seconds=seconds)
        else:
            self.fail(case_id, error)


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


def _one_line(case_id: str, e: Exception) -> str:
    msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
    if not isinstance(e, BratsSegError):
        msg = f"{e.__class__.__name__}: {msg}"
    return msg if msg.startswith(f"case {case_id}") else f"case {case_id}: {msg}"


def _process_one(case: Case, cfg: PreprocessConfig, channels: tuple[str, ...], out: Path,
                 fp: str) -> tuple[str, str | None, float]:
    """Worker: preprocess and write one case. Returns (case_id, error or None, seconds)."""
    t0 = time.perf_counter()
    try:
        pre = preprocess_case(case, cfg, channels)  # load_case refuses a case that fails any check
        pre.properties["fingerprint"] = fp
        pre.properties["inputs"] = [str(f) for f in _input_files(case, channels)]
        pre.properties["seconds"] = round(time.perf_counter() - t0, 3)
        write_cached(out, pre)
        return case.case_id, None, time.perf_counter() - t0
    except Exception as e:  # report every failure and go on with the other cases
        remove_entry(out, case.case_id)
        return case.case_id, _one_line(case.case_id, e), time.perf_counter() - t0


def _run(todo: list[tuple[Case, str]], cfg: PreprocessConfig, channels: tuple[str, ...], out: Path,
         report: PreprocessReport, workers: int, progress: bool) -> None:
    """Preprocess the ``(case, fingerprint)`` pairs in ``workers`` processes, into ``report``."""
    from tqdm.auto import tqdm

    with tqdm(total=len(todo), desc="preprocess", unit="case", disable=not progress or not todo) as bar:
        if workers <= 1 or len(todo) <= 1:
            for case, fp in todo:
                report.record(*_process_one(case, cfg, channels, out, fp))
                bar.update(1)
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = [pool.submit(_process_one, case, cfg, channels, out, fp) for case, fp in todo]
            for fut in as_completed(futures):
                report.record(*fut.result())
                bar.update(1)


def preprocess_dataset(root_or_cases: str | Path | Sequence[Case], out: str | Path,
                       cfg: PreprocessConfig | None = None, *, layout: str | None = None,
                       label_scheme: str | None = None,
                       channels: Sequence[str] = MODALITIES, workers: int = 2,
                       progress: bool = True) -> PreprocessReport:
    """Preprocess every case of a dataset folder (or a list of :class:`Case`) into the cache ``out``.

    Idempotent: a case whose inputs (size, mtime), config and channels are unchanged is
    skipped. Cases run in ``workers`` processes (1: in this process). A failing case is
    reported in ``report.failed`` (and leaves no files behind); the others are still done.
    A run given one case that fails raises :class:`CaseError` (one line) and writes no index.
    """
    cfg = cfg or PreprocessConfig()
    get_normalizer(cfg.normalization, clip_percentiles=tuple(cfg.clip_percentiles))  # bad config fails early
    if isinstance(root_or_cases, (str, Path)):
        cases = list(discover_cases(root_or_cases, layout=layout, label_scheme=label_scheme))
    else:
        cases = list(root_or_cases)
    if not cases:
        raise BratsSegError(f"{root_or_cases}: no cases found")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    channels = tuple(channels)
    report = PreprocessReport(out=out)
    todo = []
    for case in cases:
        fp = fingerprint(case, cfg, channels)
        if entry_fingerprint(out, case.case_id) == fp:
            report.skipped.append(case.case_id)
        else:
            todo.append((case, fp))
    _run(todo, cfg, channels, out, report, workers, progress)
    if len(cases) == 1 and report.failed:
        raise CaseError(next(iter(report.failed.values())))
    ok = {*report.done, *report.skipped}
    write_index(out, to_dict(cfg), channels, [c.case_id for c in cases if c.case_id in ok],
                version=PREPROCESS_VERSION, failed=report.failed)
    return report


def preprocess_raw(data: str | Path, cache: str | Path, cfg: PreprocessConfig | None = None, *,
                   channels: Sequence[str] = MODALITIES, progress: bool = True, layout: str | None = None,
                   label_scheme: str | None = None) -> dict[str, str]:
    """Preprocess a raw dataset into the cache a training command reads (:func:`preprocess_dataset`).

    Cases that fail a check are left out, listed on stderr and returned (case id -> one-line
    reason) for the command to list again at its end; when no case goes through, raises
    :class:`CaseError` with the reasons (one line).
    """
    report = preprocess_dataset(data, cache, cfg, channels=channels, progress=progress, layout=layout,
                                label_scheme=label_scheme)
    if report.failed and not (report.done or report.skipped):
        raise CaseError(f"{data}: no case went through the checks: {'; '.join(report.failed.values())}")
    if report.failed:
        print(f"preprocess: {len(report.failed)} case(s) skipped: " + "; ".join(report.failed.values()),
              file=sys.stderr)
    return dict(report.failed)
