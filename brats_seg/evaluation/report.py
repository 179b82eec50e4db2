"""Scoring a folder of predictions against references: metrics.csv, summary.json/.md, box plots.

:func:`evaluate_folder` pairs prediction and reference label maps by case id
(:mod:`.pairing`), scores every pair (:mod:`.scoring`: the label schemes, the
groups the reference's scheme scores, the legacy metrics of :mod:`.metrics` and
optionally the lesion-wise ones of :mod:`.lesionwise`) in parallel over cases,
and writes into ``out_dir``:

- ``metrics.csv``: one row per case and group (column ``region``: WT, TC, ET and,
  for the 2024+ schemes, NETC, SNFH, RC, CC, ED or GTV; ``status`` ok / missing / error);
- ``summary.json`` and ``summary.md``: mean, std, median, 25th and 75th
  percentiles per group and metric, the label schemes, the missing and failed cases;
- ``boxplots.png``: Dice and HD95 per group.

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
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import GROUP_NAMES, REGIONS
from ..errors import BratsSegError, CaseError
from ..files import atomic_path
from .lesionwise import LESION_HD95_MODE, LESION_METRICS
from .metrics import DEFAULT_HD95_MODE, METRICS
from .pairing import find_label_maps, find_references, pair_cases
from .scoring import EvaluationSettings, decide_reference_schemes, score_case

STATISTICS: tuple[str, ...] = ("mean", "std", "median", "q25", "q75", "n")


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


def groups_of(rows: Sequence[dict]) -> list[str]:
    """The groups (WT, TC, ET, NETC, ...) the rows hold, in :data:`~brats_seg.conventions.GROUP_NAMES` order."""
    present = {r["region"] for r in rows}
    return [g for g in GROUP_NAMES if g in present] + sorted(present - set(GROUP_NAMES))


def summarize(rows: list[dict], metrics: Sequence[str]) -> dict[str, dict[str, dict]]:
    """``{group: {metric: statistics}}`` over the scored rows (status ok or missing)."""
    scored = [r for r in rows if r["status"] in ("ok", "missing")]
    return {group: {m: describe([r.get(m) for r in scored if r["region"] == group]) for m in metrics}
            for group in groups_of(scored)}


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
    """Human-readable summary: one table per group, then the missing and failed cases."""
    lines = [f"# Evaluation of {summary['prediction_dir']}", "",
             f"Reference: {summary['reference_dir']}  ", f"Cases: {summary['n_cases']} "
             f"(scored {summary['n_scored']}, missing predictions {len(summary['missing'])},"
             f" failed {len(summary['failed'])})  ",
             f"HD95: {summary['settings']['hd95_mode']} definition, mm; empty-mask rules of legacy BraTS"
             f" (Dice 1 / HD95 0 when both empty, Dice 0 / HD95 373.13 when one is)  ",
             f"Reference label scheme: {', '.join(summary['label_schemes']) or '-'}", ""]
    for region in summary["metrics"]:
        lines += [f"## {region} ({GROUP_NAMES.get(region, region)})", "",
                  "| metric | mean | std | median | 25% | 75% | n |",
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
    lesionwise: bool = False, challenge: str | None = None, lesion_hd95_mode: str = LESION_HD95_MODE,
    workers: int = 1, progress: bool = True, plots: bool = True, layout: str | None = None,
) -> EvaluationResult:
    """Score every reference case against its prediction and write the report into ``out_dir``.

    ``pred_scheme``/``ref_scheme``: label schemes (None: decided as :mod:`.scoring`
    says; references per dataset, an ambiguous dataset raises). ``lesionwise``: add
    the BraTS 2023+ lesion-wise scores with the parameters of sub-challenge
    ``challenge`` (None: from each case id) and per-lesion HD95 ``lesion_hd95_mode``
    (the challenge's surfels by default). ``workers``: processes. A run given one case that
    cannot be scored raises :class:`CaseError` (one line) and writes nothing.
    """
    settings = EvaluationSettings(pred_scheme=pred_scheme, ref_scheme=ref_scheme, hd95_mode=hd95_mode,
                                  lesionwise=lesionwise, challenge=challenge, lesion_hd95_mode=lesion_hd95_mode,
                                  workers=workers, layout=layout)
    settings.validate()
    pred_dir, ref_dir, out_dir = Path(pred_dir), Path(ref_dir), Path(out_dir)
    refs = find_references(ref_dir, layout)
    preds = find_label_maps(pred_dir)
    pairing = pair_cases(preds, refs)
    jobs = {c: {"case_id": c, "pred": None if p is None else str(p), "ref": str(r), "hint": refs.schemes.get(c),
                "settings": asdict(settings)} for c, p, r in pairing.pairs}
    results = _run_jobs(list(jobs.values()), workers, progress)
    if ref_scheme is None:  # one scheme per dataset: rescore the cases whose own values left it open
        redo = decide_reference_schemes(results, refs.schemes, ref_dir)
        if redo:
            again = _run_jobs([{**jobs[c], "ref_scheme": s} for c, s in redo.items()], workers, progress)
            results = sorted([r for r in results if r["case_id"] not in redo] + again, key=lambda r: r["case_id"])

    names = metric_names(lesionwise)
    rows, failures = _rows(results)
    if len(pairing.pairs) == 1 and failures:  # one case given and it failed: bad input, nothing written
        raise CaseError(failures[0]["error"])
    stats = summarize(rows, names)
    summary = {
        "prediction_dir": str(pred_dir), "reference_dir": str(ref_dir),
        "n_cases": len(pairing.pairs), "n_scored": len(pairing.pairs) - len(failures),
        "missing": pairing.missing, "failed": failures, "extra_predictions": pairing.extra_predictions,
        "warnings": list(preds.problems) + list(refs.problems) + _warnings(results), "settings": asdict(settings),
        "label_schemes": sorted({r["ref_scheme"] for r in results if r.get("ref_scheme")}),
        "mean_dice": _mean_of(stats, "dice"), "metrics": stats,
    }
    if lesionwise:
        summary["challenges"] = sorted({r["challenge"] for r in results if r.get("challenge")})
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


def _rows(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """metrics.csv rows (one per case and group; a failed case gets an error row per group of the run)."""
    rows, failures = [], []
    for res in results:
        if res["status"] in ("ok", "missing"):
            rows += [{"case_id": res["case_id"], "region": g, "status": res["status"], **m}
                     for g, m in res["metrics"].items()]
    groups = groups_of(rows) or list(REGIONS)
    for res in results:
        if res["status"] not in ("ok", "missing"):
            failures.append({"case_id": res["case_id"], "error": res["error"]})
            rows += [{"case_id": res["case_id"], "region": g, "status": "error"} for g in groups]
    order = {g: i for i, g in enumerate(groups)}
    rows.sort(key=lambda r: (r["case_id"], order.get(r["region"], len(order))))
    return rows, failures


def _warnings(results: list[dict]) -> list[str]:
    """Each case's warnings, and one line per set of groups left unscored (and how many cases)."""
    out = [w for r in results for w in r["warnings"]]
    unscored = Counter(tuple(r["unscored"]) for r in results if r.get("unscored"))
    out += [f"{n} case(s): group(s) {', '.join(g)} of the reference's scheme not scored: the prediction's scheme"
            " has no such label (see --pred-scheme)" for g, n in unscored.items()]
    return out


def _mean_of(stats: dict, metric: str) -> float | None:
    """Mean over WT, TC, ET (the legacy mean); over the scored groups for a scheme without them (MEN-RT)."""
    groups = REGIONS if any(r in stats for r in REGIONS) or not stats else list(stats)
    means = [stats[r][metric]["mean"] if r in stats else None for r in groups]
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
