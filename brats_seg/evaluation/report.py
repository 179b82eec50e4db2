"""Scoring a folder of predictions against references: metrics.csv, summary.json/.md, box plots.

:func:`evaluate_folder` pairs prediction and reference label maps by case id
(:mod:`.pairing`), scores every pair with the legacy metrics (:mod:`.metrics`)
and optionally the lesion-wise ones (:mod:`.lesionwise`), in parallel over
cases, and writes into ``out_dir``:

- ``metrics.csv``: one row per case and region (``status`` ok / missing / error);
- ``summary.json`` and ``summary.md``: mean, std, median, 25th and 75th
  percentiles per region and metric, and the missing and failed cases;
- ``boxplots.png``: Dice and HD95 per region.

A missing prediction scores as an empty label map (as the challenge does) and is
listed; an unreadable or mismatched prediction is listed with its error and left
out of the statistics, and the other cases are still scored.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import LABEL_SCHEMES, REGIONS, detect_scheme, get_scheme, schemes_matching
from ..data.io import read_image
from ..errors import BratsSegError
from ..files import atomic_path
from .lesionwise import LESION_METRICS, get_challenge, lesionwise_case
from .metrics import DEFAULT_HD95_MODE, HD95_MODES, METRICS, evaluate_case, label_values
from .pairing import find_label_maps, find_references, pair_cases

STATISTICS: tuple[str, ...] = ("mean", "std", "median", "q25", "q75", "n")


@dataclass
class EvaluationSettings:
    """How a folder is scored (saved in summary.json)."""

    pred_scheme: str | None = None
    ref_scheme: str | None = None
    hd95_mode: str = DEFAULT_HD95_MODE
    lesionwise: bool = False
    challenge: str = "gli"
    workers: int = 1

    def validate(self) -> None:
        if self.hd95_mode not in HD95_MODES:
            raise BratsSegError(f"unknown hd95 mode {self.hd95_mode!r}; valid: {', '.join(HD95_MODES)}")
        for scheme in (self.pred_scheme, self.ref_scheme):
            if scheme is not None:
                get_scheme(scheme)
        get_challenge(self.challenge)
        if self.workers < 1:
            raise BratsSegError(f"workers must be at least 1, got {self.workers}")


@dataclass
class EvaluationResult:
    """What :func:`evaluate_folder` wrote: the rows of metrics.csv, the summary, and the files."""

    rows: list[dict]
    summary: dict
    out_dir: Path
    failures: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# --------------------------------------------------------------------------- one case

def resolve_scheme(values: set[int], explicit: str | None, hint: str | None, what: str) -> str:
    """The label scheme of one map: the explicit one, else a compatible hint, else detected.

    Values that fit several schemes are accepted when those schemes define the same
    regions for the values present (e.g. ``{0, 1, 2, 4}`` in brats2015 and brats2021).
    """
    if explicit is not None:
        return get_scheme(explicit).name
    if hint is not None and set(values) <= get_scheme(hint).values:
        return get_scheme(hint).name
    candidates = schemes_matching(values)
    present = sorted(set(values) - {0})
    signatures = {tuple(tuple(v in LABEL_SCHEMES[c].regions[r] for v in present) for r in REGIONS)
                  for c in candidates}
    try:
        return detect_scheme(values)
    except BratsSegError as e:
        if candidates and len(signatures) == 1:
            return candidates[0]
        raise BratsSegError(f"{what}: {e} (give --{what.split()[0]}-scheme)") from None


def _read_labels(path: Path) -> tuple[np.ndarray, object]:
    img = read_image(path, dtype=None)
    array = np.asarray(img.array)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise BratsSegError(f"{path}: label map has shape {array.shape}; expected 3-D")
    return array, img


def score_case(job: dict) -> dict:
    """Score one pair (a picklable job dict). Returns ``{"case_id", "status", "metrics"|"error", "warnings"}``."""
    case_id, pred_path, ref_path = job["case_id"], job["pred"], job["ref"]
    s = EvaluationSettings(**job["settings"])
    out: dict = {"case_id": case_id, "warnings": []}
    try:
        ref, ref_img = _read_labels(Path(ref_path))
        ref_scheme = resolve_scheme(label_values(ref), s.ref_scheme, job.get("ref_hint"), "ref scheme")
        if pred_path is None:
            pred, pred_scheme, out["status"] = np.zeros(ref.shape, np.uint8), ref_scheme, "missing"
        else:
            pred, pred_img = _read_labels(Path(pred_path))
            if pred.shape != ref.shape:
                raise BratsSegError(f"{pred_path}: shape {'x'.join(map(str, pred.shape))} differs from the"
                                    f" reference's {'x'.join(map(str, ref.shape))}")
            if not np.allclose(pred_img.affine, ref_img.affine, atol=1e-3):
                out["warnings"].append(f"case {case_id}: prediction affine differs from the reference's;"
                                       " scored in voxel space with the reference spacing")
            pred_scheme = resolve_scheme(label_values(pred), s.pred_scheme, ref_scheme, "pred scheme")
            out["status"] = "ok"
        spacing = ref_img.spacing[:3]
        metrics = evaluate_case(pred, ref, spacing, pred_scheme, ref_scheme, hd95_mode=s.hd95_mode)
        if s.lesionwise:
            lw = lesionwise_case(pred, ref, spacing, pred_scheme, ref_scheme, challenge=s.challenge)
            for r in REGIONS:
                metrics[r].update(lw[r])
        out["metrics"] = metrics
    except BratsSegError as e:
        out.update(status="error", error=f"case {case_id}: {e}")
    except Exception as e:  # a batch goes on past any bad case; the error names it
        out.update(status="error", error=f"case {case_id}: {e.__class__.__name__}: {e}")
    return out


# --------------------------------------------------------------------------- statistics

def metric_names(lesionwise: bool) -> tuple[str, ...]:
    return METRICS + (LESION_METRICS if lesionwise else ())


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """mean, std (sample, ddof=1), median, 25th/75th percentiles and n of the finite values (None if undefined)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {k: (0 if k == "n" else None) for k in STATISTICS}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
            "q75": float(np.percentile(v, 75)), "n": int(v.size)}


def summarize(rows: list[dict], metrics: Sequence[str]) -> dict[str, dict[str, dict]]:
    """``{region: {metric: statistics}}`` over the scored rows (status ok or missing)."""
    scored = [r for r in rows if r["status"] in ("ok", "missing")]
    return {region: {m: describe([r[m] for r in scored if r["region"] == region]) for m in metrics}
            for region in REGIONS}


# --------------------------------------------------------------------------- writing

def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def write_metrics_csv(path: Path, rows: list[dict], metrics: Sequence[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["case_id", "region", "status", *metrics])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames})


def _fmt(x, digits=4) -> str:
    return "" if x is None else (str(x) if isinstance(x, int) else f"{x:.{digits}f}")


def summary_markdown(summary: dict) -> str:
    """Human-readable summary: one table per region, then the missing and failed cases."""
    lines = [f"# Evaluation of {summary['prediction_dir']}", "",
             f"Reference: {summary['reference_dir']}  ", f"Cases: {summary['n_cases']} "
             f"(scored {summary['n_scored']}, missing predictions {len(summary['missing'])},"
             f" failed {len(summary['failed'])})  ",
             f"HD95: {summary['settings']['hd95_mode']} definition, mm; empty-mask rules of legacy BraTS"
             f" (Dice 1 / HD95 0 when both empty, Dice 0 / HD95 373.13 when one is)", ""]
    for region in REGIONS:
        lines += [f"## {region}", "", "| metric | mean | std | median | 25% | 75% | n |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for metric, st in summary["metrics"][region].items():
            lines.append(f"| {metric} | " + " | ".join(_fmt(st[k]) for k in STATISTICS) + " |")
        lines.append("")
    if summary["missing"]:
        lines += ["## Missing predictions (scored as empty)", "", *[f"- {c}" for c in summary["missing"]], ""]
    if summary["failed"]:
        lines += ["## Failed cases (not scored)", "", *[f"- {f['case_id']}: {f['error']}" for f in summary["failed"]],
                  ""]
    if summary["extra_predictions"]:
        lines += ["## Predictions without a reference (ignored)", "",
                  *[f"- {c}" for c in summary["extra_predictions"]], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- folder

def _run_jobs(jobs: list[dict], workers: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="evaluate", unit="case", disable=not progress)
    results = []
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(score_case(job))
                bar.update()
        else:
            # fork is fast, but unsafe once torch has started its thread pools (e.g. after training)
            fork_ok = "torch" not in sys.modules and "fork" in mp.get_all_start_methods()
            method = "fork" if fork_ok else "spawn"
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context(method)) as pool:
                futures = [pool.submit(score_case, job) for job in jobs]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    return sorted(results, key=lambda r: r["case_id"])


def evaluate_folder(
    pred_dir: str | Path, ref_dir: str | Path, out_dir: str | Path, *,
    pred_scheme: str | None = None, ref_scheme: str | None = None, hd95_mode: str = DEFAULT_HD95_MODE,
    lesionwise: bool = False, challenge: str = "gli", workers: int = 1, progress: bool = True,
    plots: bool = True,
) -> EvaluationResult:
    """Score every reference case against its prediction and write the report into ``out_dir``.

    ``pred_scheme``/``ref_scheme``: label schemes (None: the reference layout's
    scheme, else detected per case; a prediction defaults to the reference's when
    its values fit). ``lesionwise``: add the BraTS 2023+ lesion-wise scores with
    the parameters of sub-challenge ``challenge``. ``workers``: processes.
    """
    settings = EvaluationSettings(pred_scheme, ref_scheme, hd95_mode, lesionwise, challenge, workers)
    settings.validate()
    pred_dir, ref_dir, out_dir = Path(pred_dir), Path(ref_dir), Path(out_dir)
    refs = find_references(ref_dir)
    preds = find_label_maps(pred_dir)
    pairing = pair_cases(preds, refs)
    jobs = [{"case_id": c, "pred": None if p is None else str(p), "ref": str(r), "ref_hint": refs.schemes.get(c),
             "settings": asdict(settings)} for c, p, r in pairing.pairs]
    results = _run_jobs(jobs, workers, progress)

    names = metric_names(lesionwise)
    rows, failures, warnings = [], [], list(preds.problems) + list(refs.problems)
    for res in results:
        warnings += res["warnings"]
        if res["status"] == "error":
            failures.append({"case_id": res["case_id"], "error": res["error"]})
            rows += [{"case_id": res["case_id"], "region": r, "status": "error"} for r in REGIONS]
            continue
        for region in REGIONS:
            rows.append({"case_id": res["case_id"], "region": region, "status": res["status"],
                         **res["metrics"][region]})

    stats = summarize(rows, names)
    summary = {
        "prediction_dir": str(pred_dir), "reference_dir": str(ref_dir),
        "n_cases": len(pairing.pairs), "n_scored": len(pairing.pairs) - len(failures),
        "missing": pairing.missing, "failed": failures, "extra_predictions": pairing.extra_predictions,
        "warnings": warnings, "settings": asdict(settings),
        "mean_dice": _mean_of(stats, "dice"), "metrics": stats,
    }
    summary = _clean(summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(out_dir / "metrics.csv", rows, names)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text(summary_markdown(summary))
    if plots:
        from .plots import boxplots

        boxplots(rows, out_dir / "boxplots.png", metrics=("dice", "hd95") + (("lesion_dice",) if lesionwise else ()))
    return EvaluationResult(rows, summary, out_dir, failures)


def _mean_of(stats: dict, metric: str) -> float | None:
    means = [stats[r][metric]["mean"] for r in REGIONS]
    return None if any(m is None for m in means) else float(np.mean(means))


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Rows of a metrics.csv written by :func:`evaluate_folder` (numbers as float, empty as None)."""
    path = Path(path)
    if not path.is_file():
        raise BratsSegError(f"{path}: no metrics.csv (run `brats-seg evaluate` first)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"case_id", "region", "status"} <= set(rows[0]):
        raise BratsSegError(f"{path}: not a brats-seg metrics.csv (needs columns case_id, region, status)")
    for row in rows:
        for k, v in row.items():
            if k not in ("case_id", "region", "status"):
                row[k] = float(v) if v not in ("", None) else None
    return rows
