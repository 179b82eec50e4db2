"""Experiment ``ensembles``: do EMMA-style ensembles help, and does member diversity predict by how much?

EMMA (Kamnitsas et al., BrainLes 2017, arXiv:1711.01468) averages the class probabilities of
differently built networks; the ambiguity decomposition (Krogh & Vedelsby, NIPS 1994) says an
average gains most when its members' errors are least correlated. Here every member is trained
under one :class:`~brats_seg.experiments.arms.Budget` (architectures and/or seeds), then every
combination of two or more members is predicted with the predictor's probability averaging
(:class:`~brats_seg.inference.predictor.Predictor` with several checkpoints, equal weights).

For each combination the table gives its held-out Dice/HD95, the best member's mean Dice, the
gain over it, and two diversity measures averaged over member pairs: ``error_corr``, the Pearson
correlation of the members' per-voxel error maps (prediction XOR reference per region, inside
the brain, pooled over the held-out cases), and ``dice_corr``, the correlation of their
per-(case, region) Dice. ``results.md`` states whether lower error correlation went with larger
gains (Pearson r across combinations, with n).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_OVERLAP
from ..conventions import labels_to_regions
from ..errors import ConfigError
from .arms import CPU_BUDGET, Arm, Budget, train_arm
from .catalog import resolve_preset
from .datasets import CPU_PLAN, DataPlan, Split, data_label, training_data
from .figures import figure, save_figure
from .heldout_scores import (
    METRIC_COLUMNS,
    CaseScore,
    case_columns,
    mean_metrics,
    per_case_rows,
    row_groups,
    score_checkpoints,
    scored_groups,
    table_columns,
)
from .runtime import Timer, progress_bar, torch_threads
from .tables import markdown_table, write_csv, write_results


@dataclass(frozen=True)
class EnsemblesConfig:
    """``members``: (registered model, seed) pairs, each trained once. ``max_size``: largest
    combination scored (None: all members)."""

    members: tuple[tuple[str, int], ...] = (("unet3d", 0), ("unet3d", 1), ("resunet", 0))
    max_size: int | None = None
    budget: Budget = field(default_factory=Budget)
    data: DataPlan = field(default_factory=DataPlan)


PRESETS: dict[str, EnsemblesConfig] = {
    # CPU, seconds: two seeds of one architecture and one other architecture -> 4 combinations.
    "smoke": EnsemblesConfig(members=(("unet3d", 0), ("unet3d", 1), ("resunet", 0)),
                             budget=Budget(preset="tiny", epochs=1, steps_per_epoch=4, patch=(32, 32, 32),
                                           batch_size=2, threads=1, augment=False)),
    # real data on one CPU core: three architectures (EMMA), 3 members + 4 combinations; the members are the
    # architectures cpu preset's arms (same models, seed, budget and cases), so a run in that experiment's
    # runs/ folder (linked as runs/MODEL-s0) leaves only the scoring, about 15 minutes.
    "cpu": EnsemblesConfig(members=(("unet3d", 0), ("resunet", 0), ("nnunet", 0)), budget=CPU_BUDGET,
                           data=CPU_PLAN),
    # one GPU: five members (four architectures, one repeated seed) -> 26 combinations.
    "full": EnsemblesConfig(members=(("nnunet", 0), ("nnunet", 1), ("segresnet", 0), ("unet3d", 0), ("resunet", 0)),
                            budget=Budget(preset="base", epochs=20, steps_per_epoch=100, patch=(128, 128, 128),
                                          batch_size=2, workers=4, overlap=DEFAULT_OVERLAP),
                            data=DataPlan(n_test=20, synth_cases=100, synth_spacing=1.0)),
}

COLUMNS: tuple[str, ...] = ("name", "kind", "n_members", *METRIC_COLUMNS, "best_member_dice_mean", "gain",
                            "error_corr", "dice_corr", "parameters", "seconds_per_case")


# --------------------------------------------------------------------------- diversity


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either vector is constant (no variation to correlate)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def error_maps(scores: list[CaseScore]) -> np.ndarray:
    """Per-voxel errors of one member pooled over cases: ``(3, N)`` bool (WT, TC, ET), N brain voxels."""
    parts = []
    for s in scores:
        pred = labels_to_regions(s.labels, s.scheme)
        ref = labels_to_regions(s.reference, s.ref_scheme)
        parts.append((pred != ref)[:, s.brain])
    return np.concatenate(parts, axis=1)


def error_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over regions of the Pearson (phi) correlation of two members' error maps ``(3, N)``."""
    vals = [_pearson(a[k], b[k]) for k in range(len(a))]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def dice_vector(scores: list[CaseScore]) -> np.ndarray:
    """Every case's Dice of every scored group (:func:`.heldout_scores.scored_groups`), case-major."""
    groups = scored_groups(scores)
    return np.array([s.metrics[g]["dice"] for s in scores for g in groups], dtype=np.float64)


def _nanmean(values) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


# --------------------------------------------------------------------------- the experiment


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: mean Dice of members (grey) and ensembles (blue). Right: error correlation vs gain."""
    fig, (left, right) = figure(2)
    x = np.arange(len(rows))
    left.bar(x, [r["dice_mean"] for r in rows],
             color=["#9e9e9e" if r["kind"] == "member" else "#1f77b4" for r in rows])
    left.set_xticks(x, [r["name"] for r in rows], rotation=40, ha="right", fontsize=7)
    left.set_ylabel("mean held-out Dice (WT, TC, ET)")
    left.set_ylim(0, 1)
    left.set_title("members (grey) and EMMA averages (blue)")
    ens = [r for r in rows if r["kind"] == "ensemble" and not np.isnan(r["error_corr"])]
    for r in ens:
        right.scatter(r["error_corr"], r["gain"], s=20 + 15 * r["n_members"], color="#1f77b4")
        right.annotate(r["name"], (r["error_corr"], r["gain"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    right.axhline(0, color="k", lw=0.6)
    right.set_xlabel("mean pairwise error correlation of members")
    right.set_ylabel("ensemble mean Dice - best member's")
    right.set_title("does diversity predict the gain?")
    return save_figure(fig, path)


def verdict(rows: list[dict[str, Any]]) -> tuple[str, float, int]:
    """Sentence on whether error correlation predicts the gain, with Pearson r and the number of combinations."""
    ens = [r for r in rows if r["kind"] == "ensemble" and not np.isnan(r["error_corr"]) and not np.isnan(r["gain"])]
    n = len(ens)
    r = _pearson([e["error_corr"] for e in ens], [e["gain"] for e in ens]) if n >= 3 else float("nan")
    if np.isnan(r):
        return (f"Not measurable: {n} combination(s) with both numbers defined (need 3 with some variation).",
                r, n)
    direction = ("lower error correlation went with larger gains, as the ambiguity decomposition predicts"
                 if r < 0 else "lower error correlation did NOT go with larger gains here")
    strength = "strongly" if abs(r) >= 0.7 else "weakly" if abs(r) >= 0.3 else "hardly at all"
    caution = " With so few combinations this is an anecdote, not evidence." if n < 10 else ""
    return f"Pearson r(error_corr, gain) = {r:.2f} over {n} combinations: {direction} ({strength}).{caution}", r, n


def run(data: str | Path | None, out: str | Path, *, preset: str = "smoke", device: str | None = None,
        progress: bool = True, config: EnsemblesConfig | None = None) -> dict[str, Any]:
    """Train the members, score them and every combination; write ``results.{csv,md,png}`` into ``out``."""
    cfg = config or resolve_preset(PRESETS, preset, "ensembles")
    with torch_threads(cfg.budget.threads):
        return _run(cfg, data, Path(out), preset if config is None else "custom", device, progress)


def member_names(cfg: EnsemblesConfig) -> list[str]:
    """``model-sSEED`` per member; at least two, none repeated, every model registered."""
    from ..models.registry import model_info

    if len(cfg.members) < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {len(cfg.members)}")
    names = [f"{m}-s{s}" for m, s in cfg.members]
    if len(set(names)) != len(names):
        raise ConfigError(f"ensemble members repeat: {', '.join(names)}")
    for m, _ in cfg.members:
        model_info(m)
    return names


@dataclass
class Members:
    """The trained members, their held-out scores (labels kept, for the error maps), and table rows."""

    names: list[str]
    arms: list[Arm] = field(default_factory=list)
    scores: list[list[CaseScore]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    case_rows: list[dict[str, Any]] = field(default_factory=list)


def train_members(cfg: EnsemblesConfig, names: list[str], cache: Path, split: Split, out: Path,
                  device: str | None, bar) -> Members:
    """Train every member under the shared budget and score it on the held-out cases."""
    members = Members(names)
    for name, (model, seed) in zip(names, cfg.members):
        arm = train_arm(name, cache, out / "runs" / name, cfg.budget, model=model, seed=seed, device=device)
        scores = score_checkpoints([arm.checkpoint], split.test, overlap=cfg.budget.overlap, device=device,
                                   keep_labels=True)
        members.arms.append(arm)
        members.scores.append(scores)
        members.rows.append({"name": name, "kind": "member", "n_members": 1, **mean_metrics(scores),
                             "parameters": arm.parameters})
        members.case_rows += per_case_rows(name, scores, kind="member")
        bar.update(1)
    return members


def pair_diversity(members: Members) -> dict[tuple[int, int], dict[str, Any]]:
    """Error and Dice correlation of every member pair (indices into ``members.names``)."""
    errors = [error_maps(s) for s in members.scores]
    dices = [dice_vector(s) for s in members.scores]
    return {(i, j): {"a": members.names[i], "b": members.names[j],
                     "error_corr": error_correlation(errors[i], errors[j]), "dice_corr": _pearson(dices[i], dices[j])}
            for i, j in itertools.combinations(range(len(members.names)), 2)}


def score_combinations(cfg: EnsemblesConfig, members: Members, pairs: dict, split: Split, device: str | None,
                       bar) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every combination of 2..``max_size`` members, predicted by probability averaging and scored:
    (table rows with gain and mean pairwise diversity, per-case rows)."""
    n = len(members.names)
    max_size = min(cfg.max_size or n, n)
    rows, case_rows = [], []
    for combo in (c for k in range(2, max_size + 1) for c in itertools.combinations(range(n), k)):
        scores = score_checkpoints([members.arms[i].checkpoint for i in combo], split.test,
                                   overlap=cfg.budget.overlap, device=device)
        name = "+".join(members.names[i] for i in combo)
        best = max(members.rows[i]["dice_mean"] for i in combo)
        metrics = mean_metrics(scores)
        in_combo = [pairs[p] for p in itertools.combinations(combo, 2)]
        rows.append({"name": name, "kind": "ensemble", "n_members": len(combo), **metrics,
                     "best_member_dice_mean": best, "gain": metrics["dice_mean"] - best,
                     "error_corr": _nanmean(p["error_corr"] for p in in_combo),
                     "dice_corr": _nanmean(p["dice_corr"] for p in in_combo),
                     "parameters": sum(members.arms[i].parameters for i in combo)})
        case_rows += per_case_rows(name, scores, kind="ensemble")
        bar.update(1)
    return rows, case_rows


def n_combinations(n: int, max_size: int | None) -> int:
    return sum(math.comb(n, k) for k in range(2, min(max_size or n, n) + 1))


def write_outputs(cfg: EnsemblesConfig, out: Path, preset: str, root: Path, split: Split, rows: list[dict],
                  case_rows: list[dict], pair_rows: list[dict], timer: Timer) -> dict[str, Any]:
    """``results.{csv,md,png}``, ``per_case.csv``, ``pairs.csv`` and ``summary.json``; returns the summary."""
    sentence, r, n = verdict(rows)
    plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, ("arm", "kind", "case_id", "seconds",
                                                *case_columns(row_groups(case_rows))))
    write_csv(out / "pairs.csv", pair_rows, ("a", "b", "error_corr", "dice_corr"))
    notes = [f"preset `{preset}`: {split.describe()}",
             f"every member: {cfg.budget.steps} steps of {cfg.budget.batch_size} x "
             f"{'x'.join(map(str, cfg.budget.patch))} crops, model size `{cfg.budget.preset}`",
             "ensembles average the members' sigmoid region probabilities with equal weights (EMMA), then threshold",
             "gain = ensemble mean Dice - its best member's mean Dice; error_corr / dice_corr: means over member pairs"]
    sections = {"Does error correlation predict the gain?": sentence,
                "Member pairs": markdown_table(pair_rows, ("a", "b", "error_corr", "dice_corr"))}
    summary = {"experiment": "ensembles", "preset": preset, "data": data_label(root), "rows": rows, "pairs": pair_rows,
               "prediction": {"pearson_r_error_corr_vs_gain": r, "n_combinations": n, "sentence": sentence},
               "test_cases": [c.case_id for c in split.test], "timings_s": {**timer.stages, "total": timer.total()}}
    columns = table_columns(COLUMNS, rows)  # WT/TC/ET data: COLUMNS; others: their groups' scores
    paths = write_results(out, rows, columns, title="Ensembles: members, EMMA averages, diversity vs gain",
                          notes=notes, sections=sections, summary=summary)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}


def _run(cfg: EnsemblesConfig, data: str | Path | None, out: Path, preset: str, device: str | None,
         progress: bool) -> dict[str, Any]:
    names = member_names(cfg)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    root, split, cache = training_data(data, out, cfg.data, progress=progress)
    timer.lap("data")
    bar = progress_bar(len(names) + n_combinations(len(names), cfg.max_size), "ensembles", progress)
    members = train_members(cfg, names, cache, split, out, device, bar)
    timer.lap("members")
    pairs = pair_diversity(members)
    rows, case_rows = score_combinations(cfg, members, pairs, split, device, bar)
    bar.close()
    timer.lap("ensembles")
    return write_outputs(cfg, out, preset, root, split, members.rows + rows, members.case_rows + case_rows,
                         list(pairs.values()), timer)
