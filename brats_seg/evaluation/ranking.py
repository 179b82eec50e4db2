"""BraTS rank-then-aggregate over several evaluated prediction sets.

The BraTS challenges rank teams per case: for every case, scored group and metric
the teams are ranked (Dice: higher is better, HD95: lower is better); each team's
ranks are averaged over all cases, groups and metrics, and the final order follows
that mean rank (Bakas et al., arXiv:1811.02629, section "Ranking"; Menze et al.,
IEEE TMI 2015). The groups are those the runs scored: WT, TC, ET, plus NETC, SNFH,
RC, CC, ED for the 2024+ label schemes.

Ties. Within a case, tied runs share the mean of the ranks they span (``rankdata``
``method="average"``: three runs tied behind the best all get 3). Why: every case
then hands out the same total of ranks, so no case weighs more than another, and a
tie neither rewards nor punishes the runs in it; ties are common in BraTS (every run
that leaves an empty region empty scores Dice 1 there). The papers above do not state
a tie rule; challengeR's ``rankThenAggregate`` (DKFZ) gives tied runs the best rank
they span (``ties.method = "min"``), which differs from ours only where runs tie on a
case. In the final order, runs with the same mean rank share the better place (1, 1, 3).

A case a run did not score (failed or absent from its metrics.csv) ranks last
for that run. Missing predictions were already scored as empty by
:func:`brats_seg.evaluation.report.evaluate_folder`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from ..errors import BratsSegError
from ..files import atomic_path
from .report import groups_of, read_metrics_csv

LEGACY_RANK_METRICS: tuple[str, ...] = ("dice", "hd95")
LESIONWISE_RANK_METRICS: tuple[str, ...] = ("lesion_dice", "lesion_hd95")
LOWER_IS_BETTER = frozenset({"hd95", "lesion_hd95"})


@dataclass
class Ranking:
    """Final order of the runs (best first) with their mean ranks and mean metric values."""

    runs: list[str]
    final_rank: dict[str, float]
    mean_rank: dict[str, float]
    rank_by_item: dict[str, dict[str, float]]
    """run -> {"WT dice": mean rank over cases, ...}."""
    mean_value: dict[str, dict[str, float | None]]
    """run -> {"WT dice": mean value over scored cases, ...}."""
    n_cases: int
    metrics: tuple[str, ...]


def rank_runs(runs: Mapping[str, Sequence[dict]], metrics: Sequence[str] = LEGACY_RANK_METRICS,
              regions: Sequence[str] | None = None) -> Ranking:
    """Rank-then-aggregate. ``runs``: name -> rows of a metrics.csv (case_id, region, status, metrics).

    ``regions``: the groups to rank on; None means every group the runs scored
    (WT, TC, ET, and NETC, SNFH, RC ... for the 2024+ schemes, as the challenges rank them).
    """
    if len(runs) < 2:
        raise BratsSegError(f"ranking needs at least two runs, got {len(runs)}")
    regions = groups_of([r for rows in runs.values() for r in rows]) if regions is None else regions
    names = list(runs)
    table: dict[str, dict[tuple[str, str], dict]] = {
        n: {(r["case_id"], r["region"]): r for r in rows if r.get("status") in ("ok", "missing")}
        for n, rows in runs.items()
    }
    for n, rows in runs.items():
        if rows and any(m not in rows[0] for m in metrics):
            raise BratsSegError(f"run {n}: metrics.csv has no column {[m for m in metrics if m not in rows[0]]}"
                                " (evaluate with --lesionwise to rank lesion-wise)")
    cases = sorted({r["case_id"] for rows in runs.values() for r in rows})
    if not cases:
        raise BratsSegError("no cases to rank")
    items = [(reg, m) for reg in regions for m in metrics]
    ranks = {n: {f"{reg} {m}": [] for reg, m in items} for n in names}
    for case in cases:
        for reg, m in items:
            values = []
            for n in names:
                v = table[n].get((case, reg), {}).get(m)
                v = np.nan if v is None else float(v)
                # a missing value ranks last; lower-is-better metrics rank ascending
                values.append(np.inf if np.isnan(v) else (v if m in LOWER_IS_BETTER else -v))
            for n, rk in zip(names, rankdata(values, method="average")):
                ranks[n][f"{reg} {m}"].append(float(rk))
    rank_by_item = {n: {k: float(np.mean(v)) for k, v in ranks[n].items()} for n in names}
    mean_rank = {n: float(np.mean([x for v in ranks[n].values() for x in v])) for n in names}
    order = sorted(names, key=lambda n: mean_rank[n])
    final = dict(zip(names, (float(x) for x in rankdata([mean_rank[n] for n in names], method="min"))))
    mean_value = {}
    for n in names:
        mean_value[n] = {}
        for reg, m in items:
            vals = [float(r[m]) for (c, rg), r in table[n].items() if rg == reg and r.get(m) is not None]
            mean_value[n][f"{reg} {m}"] = float(np.mean(vals)) if vals else None
    return Ranking(order, final, mean_rank, rank_by_item, mean_value, len(cases), tuple(metrics))


def load_runs(run_dirs: Sequence[str | Path]) -> dict[str, list[dict]]:
    """Read ``<dir>/metrics.csv`` of each evaluation folder; runs are named by folder (path if names clash)."""
    paths = [Path(d) for d in run_dirs]
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    if len(set(names)) < len(names):
        raise BratsSegError("the same evaluation folder was given twice")
    return {n: read_metrics_csv(p / "metrics.csv" if p.is_dir() else p) for n, p in zip(names, paths)}


def ranking_table(r: Ranking) -> str:
    """Plain-text table, best run first."""
    items = list(next(iter(r.rank_by_item.values())))
    width = max(8, *(len(n) for n in r.runs))
    head = f"{'rank':>5}  {'run':<{width}}  {'mean rank':>9}" + "".join(f"{k:>15}" for k in items)
    lines = [head, "-" * len(head)]
    for n in r.runs:
        cells = "".join(f"{'' if r.mean_value[n][k] is None else f'{r.mean_value[n][k]:.4f}':>15}" for k in items)
        lines.append(f"{r.final_rank[n]:>5g}  {n:<{width}}  {r.mean_rank[n]:>9.3f}{cells}")
    lines.append(f"{r.n_cases} cases; ranked per case on {', '.join(r.metrics)} for each region; "
                 "values shown are means over cases")
    return "\n".join(lines)


def write_ranking_csv(path: str | Path, r: Ranking) -> Path:
    items = list(next(iter(r.rank_by_item.values())))
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["final_rank", "run", "mean_rank", *[f"rank {k}" for k in items], *[f"mean {k}" for k in items]])
        for n in r.runs:
            w.writerow([r.final_rank[n], n, r.mean_rank[n], *[r.rank_by_item[n][k] for k in items],
                        *["" if r.mean_value[n][k] is None else r.mean_value[n][k] for k in items]])
    return path
