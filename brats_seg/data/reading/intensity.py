"""Per-case intensity statistics inside the brain, and the rule that says a case is far from training.

A new site's scans can differ from the training cases in scale and contrast before anything
else goes wrong. Per sequence, inside the brain (the voxels where any sequence is nonzero, as
preprocessing crops: BraTS-form cases are skull-stripped), :func:`intensity_stats` gives the raw
percentiles 1, 50 and 99, mean and standard deviation, and the z-scored 1st and 99th percentiles
(the contrast's shape, blind to the scale).

Training records, per sequence, the range of each statistic over its cases
(:func:`training_range`, checkpoint key ``intensity_range``). :func:`far_outside` applies the rule:

    a sequence is far outside when its raw brain median (p50) or p99 is more than
    :data:`FAR_FACTOR` times above the largest, or below the smallest divided by FAR_FACTOR,
    of the training cases' values; or when its z-scored p1 or p99 (the contrast's shape, what a
    z-scoring network sees) lies more than :data:`Z_MARGIN` standard deviations beyond theirs.

A factor, not a difference: scanners scale intensities arbitrarily, and the raw T1c brain
medians of the 22 shared labelled cases span 49 to 3926 (80x; ``brats-seg check --json`` shows
them). Raw scale alone does not change what a z-scoring network sees; it says the scans come
from elsewhere (another scanner, protocol or export). A range made from all shared cases takes
every shared case in and a tenfold-scaled shared case out (tests/data/test_intensity.py); a
range from one site only flags other sites' cases (measured: a brats2021-only range flags the
2018 and most SSA cases on raw scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FAR_FACTOR = 3.0
"""How many times beyond the training cases' range a brain median or p99 must lie to be "far outside"."""

RANGE_KEYS = ("p50", "p99")
"""The raw statistics the rule compares by :data:`FAR_FACTOR`."""

Z_MARGIN = 1.5
"""How many standard deviations beyond the training cases' z-scored p1/p99 is "far outside"."""

Z_KEYS = ("z_p1", "z_p99")

_SAMPLE = 400_000
"""Brain voxels used per sequence (an evenly spaced subsample; percentiles move by < 0.5 %)."""


def brain_mask(image: np.ndarray) -> np.ndarray:
    """``(C, H, W, D)`` -> ``(H, W, D)`` bool: voxels where any sequence is nonzero."""
    return np.any(image != 0, axis=0)


def _channel_stats(values: np.ndarray) -> dict[str, float]:
    values = values.astype(np.float64)
    p1, p50, p99 = (float(v) for v in np.percentile(values, (1, 50, 99)))
    mean, std = float(values.mean()), float(values.std())
    z = (lambda v: round((v - mean) / std, 3)) if std > 0 else (lambda v: 0.0)
    return {"p1": round(p1, 3), "p50": round(p50, 3), "p99": round(p99, 3), "mean": round(mean, 3),
            "std": round(std, 3), "z_p1": z(p1), "z_p99": z(p99), "voxels": int(values.size)}


def intensity_stats(image: np.ndarray, channels: Sequence[str], mask: np.ndarray | None = None) -> dict[str, dict]:
    """Per channel name: ``{p1, p50, p99, mean, std, z_p1, z_p99, voxels}`` of the raw intensities of
    ``image`` ``(C, H, W, D)`` inside ``mask`` ``(H, W, D)`` (default :func:`brain_mask`). A channel
    with no brain voxels gets an empty dict."""
    mask = brain_mask(image) if mask is None else mask
    index = np.flatnonzero(mask.ravel())
    if index.size > _SAMPLE:
        index = index[np.linspace(0, index.size - 1, _SAMPLE).astype(np.int64)]
    out: dict[str, dict] = {}
    for channel, name in zip(image, channels):
        values = channel.ravel()[index]
        out[str(name)] = _channel_stats(values) if values.size else {}
    return out


def training_range(per_case: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, Any] | None:
    """``{channel: {stat: [min, max]}, "cases": n}`` over the cases' :func:`intensity_stats`; None
    when ``per_case`` is empty or a case lacks statistics (a range from part of the cases would be wrong)."""
    if not per_case or any(not stats for stats in per_case):
        return None
    channels = [c for c in per_case[0] if all(per_case_stats.get(c) for per_case_stats in per_case)]
    out: dict[str, Any] = {"cases": len(per_case), "rule": f"p50 or p99 beyond {FAR_FACTOR:g}x the range,"
                                                          f" z_p1 or z_p99 beyond it by {Z_MARGIN:g}"}
    for c in channels:
        out[c] = {k: [min(float(s[c][k]) for s in per_case), max(float(s[c][k]) for s in per_case)]
                  for k in ("p1", "p50", "p99", "mean", "std", "z_p1", "z_p99")}
    return out


def _far(key: str, value: float, lo: float, hi: float, factor: float) -> bool:
    if key in Z_KEYS:
        return value > hi + Z_MARGIN or value < lo - Z_MARGIN
    return value > hi * factor or (lo > 0 and value < lo / factor)


def far_outside(stats: Mapping[str, Mapping[str, float]], ranges: Mapping[str, Any],
                factor: float = FAR_FACTOR) -> list[str]:
    """The sequences of ``stats`` (one case's :func:`intensity_stats`) far outside ``ranges``
    (:func:`training_range`), each as ``"t2f p50 4210 (training 180-900)"``; empty when none is."""
    found = []
    for channel, s in stats.items():
        r = ranges.get(channel)
        if not s or not isinstance(r, Mapping):
            continue
        for key in (*RANGE_KEYS, *Z_KEYS):
            lo, hi = r[key]
            if _far(key, float(s[key]), lo, hi, factor):
                found.append(f"{channel} {key} {float(s[key]):.4g} (training {lo:.4g} to {hi:.4g})")
                break
    return found
