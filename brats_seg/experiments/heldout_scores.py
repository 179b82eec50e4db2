"""Held-out scores: predict cases with one checkpoint or an EMMA-style ensemble, score them per region,
and summarize (means, per-case rows, a bootstrap interval of the mean)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import REGIONS


def metric_columns(groups: Sequence[str] = REGIONS) -> tuple[str, ...]:
    """A results table's per-group held-out scores (means over the held-out cases): ``dice_<group>`` ...,
    ``dice_mean``, ``hd95_<group>`` ..."""
    return (*(f"dice_{g}" for g in groups), "dice_mean", *(f"hd95_{g}" for g in groups))


METRIC_COLUMNS: tuple[str, ...] = metric_columns()
"""The per-region scores of WT/TC/ET data (:func:`table_columns` swaps in the groups of other data)."""


def case_columns(groups: Sequence[str] = REGIONS) -> tuple[str, ...]:
    """``per_case.csv``'s score columns: ``dice_<group>``, ``hd95_<group>`` per group."""
    return tuple(f"{m}_{g}" for g in groups for m in ("dice", "hd95"))


def _ordered(found: Sequence[str]) -> list[str]:
    extra = [g for g in found if g not in REGIONS]
    return [*REGIONS, *extra] if any(r in found for r in REGIONS) or not found else extra


def row_groups(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The groups ``rows`` hold scores of (their ``hd95_<group>`` keys, as :func:`mean_metrics` and
    :func:`per_case_rows` write them): WT, TC, ET, then the others; WT, TC, ET when none."""
    return _ordered(list(dict.fromkeys(k[len("hd95_"):] for r in rows for k in r if k.startswith("hd95_"))))


def meaned_groups(groups: Sequence[str]) -> tuple[str, ...]:
    """The groups ``dice_mean`` averages: WT, TC, ET where scored (as the challenge ranks), else all."""
    return REGIONS if set(REGIONS) <= set(groups) else tuple(groups)


def table_columns(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """``columns`` (holding :data:`METRIC_COLUMNS` in one run) with the score columns of the groups
    ``rows`` hold instead: unchanged for WT/TC/ET data; ``dice_RC`` ... added for brats2024-gli."""
    columns = tuple(columns)
    start = columns.index(METRIC_COLUMNS[0])
    end = start + len(METRIC_COLUMNS)
    return (*columns[:start], *metric_columns(row_groups(rows)), *columns[end:])


@dataclass
class CaseScore:
    """Held-out scores of one case: ``metrics[region][metric]``; ``labels``/``reference`` kept on request."""

    case_id: str
    metrics: dict[str, dict[str, float]]
    seconds: float
    labels: np.ndarray | None = None
    reference: np.ndarray | None = None
    brain: np.ndarray | None = None
    scheme: str = "brats2021"
    ref_scheme: str = "brats2021"


def score_checkpoints(checkpoints: Sequence[str | Path], cases: Sequence, *, overlap: float = 0.25,
                      device: str | None = None, keep_labels: bool = False,
                      weights: Sequence[float] | None = None) -> list[CaseScore]:
    """Predict every case with the checkpoints (one member, or an EMMA-style probability average over
    several: :class:`~brats_seg.inference.predictor.Predictor`) and score it per region."""
    from ..data.reading.volumes import load_case
    from ..evaluation.metrics import evaluate_case
    from ..inference.predictor import Predictor

    predictor = Predictor([str(c) for c in checkpoints], device=device, overlap=overlap, tta=0, weights=weights)
    scores = []
    for case in cases:
        vol = load_case(case)
        t0 = time.perf_counter()
        pred = predictor.predict(vol)
        seconds = time.perf_counter() - t0
        scheme = pred.info["label_scheme"]
        ref_scheme = vol.label_scheme or scheme
        metrics = evaluate_case(pred.labels, vol.label, vol.reference.spacing, pred_scheme=scheme,
                                ref_scheme=ref_scheme)
        kept = (pred.labels, vol.label, vol.image.any(axis=0)) if keep_labels else (None, None, None)
        scores.append(CaseScore(vol.case_id, metrics, seconds, *kept, scheme, ref_scheme))
    return scores


def scored_groups(scores: Iterable[CaseScore]) -> list[str]:
    """WT, TC, ET, then every other group the cases were scored on (RC, NETC, ... of the 2024 schemes; a
    MEN-RT evaluation: GTV only), in the order the scores list them."""
    return _ordered(list(dict.fromkeys(g for s in scores for g in s.metrics)))


def mean_metrics(scores: Sequence[CaseScore]) -> dict[str, float]:
    """Means over cases: ``dice_WT`` .. ``hd95_ET`` (and ``dice_RC`` ... for every other group scored),
    ``dice_mean`` (of the three regions; of the groups for a scheme without them) and ``seconds_per_case``."""
    out: dict[str, float] = {}
    groups = scored_groups(scores)
    for r in groups:
        for m in ("dice", "hd95"):
            vals = [s.metrics[r][m] for s in scores if r in s.metrics and s.metrics[r].get(m) is not None]
            out[f"{m}_{r}"] = float(np.mean(vals)) if vals else float("nan")
    meaned = meaned_groups(groups)
    out["dice_mean"] = float(np.mean([out[f"dice_{r}"] for r in meaned])) if meaned else float("nan")
    out["seconds_per_case"] = float(np.mean([s.seconds for s in scores])) if scores else float("nan")
    return out


def per_case_rows(arm: str, scores: Iterable[CaseScore], **extra: Any) -> list[dict[str, Any]]:
    """One row per (arm, case) with every scored group's Dice and HD95, for ``per_case.csv``."""
    rows = []
    scores = list(scores)
    groups = scored_groups(scores)
    for s in scores:
        row: dict[str, Any] = {"arm": arm, **extra, "case_id": s.case_id, "seconds": round(s.seconds, 3)}
        for r in groups:
            row[f"dice_{r}"] = s.metrics.get(r, {}).get("dice")
            row[f"hd95_{r}"] = s.metrics.get(r, {}).get("hd95")
        rows.append(row)
    return rows


def bootstrap_interval(values: Sequence[float], *, level: float = 0.95, resamples: int = 10000,
                       seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap ``level`` interval of the mean of ``values`` (:func:`scipy.stats.bootstrap`,
    seeded, so the same values always give the same interval); None for fewer than two values."""
    from scipy.stats import bootstrap

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return None
    if np.all(v == v[0]):  # every resample has the same mean
        return float(v[0]), float(v[0])
    res = bootstrap((v,), np.mean, confidence_level=level, n_resamples=resamples, method="percentile",
                    rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def arm_intervals(rows: Sequence[dict[str, Any]], baseline: str, *, level: float = 0.95) -> list[dict[str, Any]]:
    """Per arm of ``per_case.csv`` rows: the mean over cases of the per-case mean Dice (:func:`meaned_groups`) with its
    bootstrap interval and, for arms other than ``baseline``, the paired per-case difference from it (mean,
    interval, cases where the arm is better). Cases missing from the baseline are not paired."""
    arms: dict[str, dict[str, float]] = {}
    meaned = meaned_groups(row_groups(rows))
    for r in rows:
        arms.setdefault(str(r["arm"]), {})[str(r["case_id"])] = float(np.mean([float(r[f"dice_{g}"]) for g in meaned]))
    base = arms.get(baseline, {})
    out = []
    for arm, cases in arms.items():
        row: dict[str, Any] = {"arm": arm, "n": len(cases), "dice_mean": float(np.mean(list(cases.values()))),
                               "ci": bootstrap_interval(list(cases.values()), level=level)}
        paired = [cases[c] - base[c] for c in cases if c in base]
        if arm != baseline and paired:
            row.update(diff=float(np.mean(paired)), diff_ci=bootstrap_interval(paired, level=level),
                       better=sum(d > 0 for d in paired), n_paired=len(paired))
        out.append(row)
    return out
