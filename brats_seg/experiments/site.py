"""Experiment ``transfer`` with ``--source-data`` and ``--target-data``: bringing a model to a new site.

The review says transfer learning helps when target data is scarce and fails "when the domain
shift is too large". This tests it on a real shift: a source population (e.g. the shared BraTS
cases) and a target site with a handful of labelled cases (e.g. the six BraTS-Africa cases).
Every arm is scored by leave-one-case-out on the target cases (fold k trains on every target case
but k and predicts k) and, with its first fold's model, on held-out source cases (what adapting
costs the source domain):

==================  ======================================================================
``source_only``     trained on the source cases only (one model for every fold)
``target_only``     trained from scratch on the fold's target cases
``pooled``          trained on the source cases and the fold's target cases together
``finetune``        the source model fine-tuned on the fold's target cases, whole network
``finetune_frozen`` the same with the encoder frozen for the first half of the steps
``finetune_low_lr`` the same at a tenth of the learning rate
``tent``            the source model adapted without labels to the target site's scans
                    (:mod:`brats_seg.training.adapt`; every target case's images, labels unused:
                    what a site with no labels can do; one model for every fold)
``synth_finetune``  a model trained on synthetic cases (:mod:`brats_seg.data.synth`) as the
                    source, fine-tuned on the fold's target cases
==================  ======================================================================

Writes ``results.{csv,md,png}`` (per arm: mean Dice WT/TC/ET and HD95 on the target cases, a
bootstrap interval of the mean Dice and the paired difference from ``source_only``, the source
domain's mean Dice, CPU seconds), ``per_case.csv`` and ``summary.json``. Each arm's training
runs on a stated :class:`~.arms.Budget` (``PRESETS``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .arms import CPU_BUDGET, Budget, train_arm
from .datasets import CPU_PLAN, DataPlan, build_cache, labeled_cases
from .figures import figure, save_figure
from .heldout_scores import (
    METRIC_COLUMNS,
    arm_intervals,
    case_columns,
    mean_metrics,
    per_case_rows,
    row_groups,
    score_checkpoints,
    table_columns,
)
from .runtime import Timer, progress_bar
from .tables import write_csv, write_results

ARMS: tuple[str, ...] = ("source_only", "target_only", "pooled", "finetune", "finetune_frozen", "finetune_low_lr",
                         "tent", "synth_finetune")
"""Every arm, in the table's order (module docstring)."""

FINETUNED = ("finetune", "finetune_frozen", "finetune_low_lr", "synth_finetune")


@dataclass(frozen=True)
class SiteConfig:
    """Budgets per kind of training (``source``: source-only, pooled and the synthetic source; ``target``:
    target-only; ``finetune``: the fine-tuned arms), ``adapt_steps`` TENT steps, ``source_test`` source
    cases held out, ``target_cases`` (0: all) target cases used, ``synth_cases`` at ``synth_spacing`` mm."""

    model: str = "unet3d"
    arms: tuple[str, ...] = ARMS
    source: Budget = field(default_factory=Budget)
    target: Budget = field(default_factory=Budget)
    finetune: Budget = field(default_factory=Budget)
    adapt_steps: int = 5
    source_test: int = 1
    target_cases: int = 0
    synth_cases: int = 2
    synth_spacing: float = 4.0
    data: DataPlan = field(default_factory=DataPlan)
    seed: int = 0


_SMOKE = Budget(preset="tiny", epochs=1, steps_per_epoch=2, patch=(16, 16, 16), batch_size=2, threads=1,
                augment=False, overlap=0.25)
_CPU_FT = dataclasses.replace(CPU_BUDGET, epochs=2, steps_per_epoch=20, lr=1e-3)
_CPU_TARGET = dataclasses.replace(CPU_BUDGET, epochs=2)

PRESETS: dict[str, SiteConfig] = {
    # seconds: tiny networks, two steps per training, the first two target cases (two folds)
    "smoke": SiteConfig(source=_SMOKE, target=_SMOKE, finetune=_SMOKE, adapt_steps=2, source_test=1,
                        target_cases=2, synth_cases=2),
    # one CPU core, real data at 2 mm: the source, pooled and synthetic-source models 160 steps each;
    # target-only 80 steps per fold (five cases); fine-tuning 40 steps per fold (20 with the encoder
    # frozen in finetune_frozen); TENT 50 steps. Six target folds: 6 x (target-only + pooled + 4
    # fine-tuned) + 3 = 39 trainings, 2,720 steps, about 1.5-2 hours on one core.
    "cpu": SiteConfig(source=CPU_BUDGET, target=_CPU_TARGET, finetune=_CPU_FT, adapt_steps=50, source_test=4,
                      synth_cases=8, synth_spacing=2.0, data=CPU_PLAN),
}

COLUMNS: tuple[str, ...] = ("arm", "n_target", *METRIC_COLUMNS, "dice_ci", "diff_vs_source", "diff_ci", "better",
                            "source_dice_mean", "cpu_seconds", "note")


@dataclass
class Sites:
    """The cases: source training and held-out, and the target cases (leave-one-out folds)."""

    source_train: list
    source_test: list
    target: list


def split_sites(source: Sequence[str | Path], target: Sequence[str | Path], cfg: SiteConfig) -> Sites:
    """Source cases pooled from ``source`` (``source_test`` of them held out by a seeded draw) and the target
    cases of ``target`` (the first ``target_cases``, 0: all); at least two target cases."""
    pooled = sorted((c for root in source for c in labeled_cases(root)), key=lambda c: c.case_id)
    targets = sorted((c for root in target for c in labeled_cases(root)), key=lambda c: c.case_id)
    targets = targets[: cfg.target_cases] if cfg.target_cases else targets
    if len(targets) < 2 or len(pooled) < cfg.source_test + 1:
        raise ConfigError(f"the site experiment needs two labelled target cases and {cfg.source_test + 1} source"
                          f" cases; found {len(targets)} and {len(pooled)}")
    order = np.random.default_rng(cfg.seed).permutation(len(pooled))
    held = set(order[: cfg.source_test].tolist())
    return Sites([c for i, c in enumerate(pooled) if i not in held], [c for i, c in enumerate(pooled) if i in held],
                 targets)


@dataclass
class Trained:
    """What one arm produced: per-case target scores, the source-domain scores, training seconds."""

    target: list = field(default_factory=list)
    source: list = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""


def _fold_trainings(cfg: SiteConfig, out: Path, k: int, cache: Path, pooled: Path, inits: dict[str, Path],
                    device: str | None) -> dict[str, Any]:
    """The arms trained on fold ``k``: arm -> :class:`~.arms.Arm`."""
    from ..data.preprocessing.cache import cached_case_ids
    from ..training.run_data import output_scheme

    ft = cfg.finetune
    scheme = output_scheme(cache, cached_case_ids(cache, labelled=True), None)  # the site's: pooled mixes schemes
    runs = {
        "target_only": dict(cache=cache, budget=cfg.target),
        "pooled": dict(cache=pooled, budget=cfg.source, train_options={"output_scheme": scheme}),
        "finetune": dict(cache=cache, budget=ft, init_from=inits["source"]),
        "finetune_frozen": dict(cache=cache, budget=ft, init_from=inits["source"],
                                freeze_encoder_epochs=max(1, ft.epochs // 2)),
        "finetune_low_lr": dict(cache=cache, budget=dataclasses.replace(ft, lr=ft.lr / 10),
                                init_from=inits["source"]),
        "synth_finetune": dict(cache=cache, budget=ft, init_from=inits.get("synth")),
    }
    return {arm: train_arm(f"{arm}-fold{k}", r.pop("cache"), out / "runs" / f"{arm}-fold{k}", r.pop("budget"),
                           model=cfg.model, seed=cfg.seed, device=device, **r)
            for arm, r in runs.items() if arm in cfg.arms}


def _prepare(cfg: SiteConfig, sites: Sites, out: Path, device: str | None) -> tuple[dict[str, Path], dict]:
    """The source model, the synthetic source (when an arm needs it) and the TENT-adapted model."""
    from ..training.adapt import AdaptConfig, adapt

    src = train_arm("source", build_cache(sites.source_train, out / "cache" / "source", cfg.data),
                    out / "runs" / "source", cfg.source, model=cfg.model, seed=cfg.seed, device=device)
    inits, seconds = {"source": src.checkpoint}, {"source": src.train_seconds}
    if "synth_finetune" in cfg.arms:
        from ..data.synth import synthesize_dataset

        folder = out / "prep" / "synth"
        if not (folder / "synth.json").is_file():
            synthesize_dataset(folder, cfg.synth_cases, seed=cfg.seed + 1000, spacing=cfg.synth_spacing,
                               progress=False)
        synth = train_arm("synth", build_cache(labeled_cases(folder), out / "cache" / "synth", cfg.data),
                          out / "runs" / "synth", cfg.source, model=cfg.model, seed=cfg.seed, device=device)
        inits["synth"], seconds["synth"] = synth.checkpoint, synth.train_seconds
    if "tent" in cfg.arms:
        scans = out / "prep" / "target_scans"
        _link_images(sites.target, scans)
        tent = out / "runs" / "tent.pt"
        record = adapt(src.checkpoint, scans, tent, AdaptConfig(steps=cfg.adapt_steps, seed=cfg.seed,
                                                                patch=cfg.source.patch, device=device or "cpu"))
        inits["tent"], seconds["tent"] = tent, record["seconds"]
    return inits, seconds


def _link_images(cases: Sequence, folder: Path) -> None:
    """The target cases' images (no labels) as a dataset folder of symbolic links: what TENT may read."""
    for case in cases:
        dest = folder / case.case_id
        dest.mkdir(parents=True, exist_ok=True)
        for path in case.images.values():
            link = dest / Path(path).name
            if not link.exists():
                link.symlink_to(Path(path).resolve())


def _score(checkpoint: Path, cases: Sequence, cfg: SiteConfig, device: str | None) -> list:
    return score_checkpoints([checkpoint], cases, overlap=cfg.source.overlap, device=device)


def run_site(cfg: SiteConfig, sites: Sites, out: Path, device: str | None, progress: bool) -> dict[str, Trained]:
    """Train and score every arm (module docstring); arm -> :class:`Trained`."""
    done = {arm: Trained() for arm in cfg.arms}
    inits, prep_seconds = _prepare(cfg, sites, out, device)
    for arm, key in (("source_only", "source"), ("tent", "tent")):
        if arm in cfg.arms:
            done[arm].target = _score(inits[key], sites.target, cfg, device)
            done[arm].source = _score(inits[key], sites.source_test, cfg, device)
            done[arm].seconds = prep_seconds["source"] + (prep_seconds.get("tent", 0.0) if arm == "tent" else 0.0)
    bar = progress_bar(len(sites.target), "site folds", progress)
    for k, held in enumerate(sites.target):
        rest = [c for c in sites.target if c is not held]
        cache = build_cache(rest, out / "cache" / f"target-fold{k}", cfg.data)
        pooled = build_cache([*sites.source_train, *rest], out / "cache" / f"pooled-fold{k}", cfg.data)
        for arm, trained in _fold_trainings(cfg, out, k, cache, pooled, inits, device).items():
            done[arm].target += _score(trained.checkpoint, [held], cfg, device)
            done[arm].seconds += trained.train_seconds + (prep_seconds.get("synth", 0.0) if arm == "synth_finetune"
                                                          and k == 0 else 0.0)
            if k == 0:
                done[arm].source = _score(trained.checkpoint, sites.source_test, cfg, device)
        bar.update(1)
    bar.close()
    for arm in FINETUNED:
        if arm in done:
            done[arm].seconds += prep_seconds["source"] if arm != "synth_finetune" else 0.0
    return done


def _rounded(interval: Sequence[float] | None) -> tuple[float, float] | None:
    """An interval to 3 decimals, as the table prints it (None stays None)."""
    return None if interval is None else (round(float(interval[0]), 3), round(float(interval[1]), 3))


def table(done: dict[str, Trained]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(results rows, per-case rows) with bootstrap intervals and paired differences from ``source_only``."""
    case_rows = [r for arm, t in done.items() for r in per_case_rows(arm, t.target, domain="target")]
    source_rows = [r for arm, t in done.items() for r in per_case_rows(arm, t.source, domain="source")]
    stats = {s["arm"]: s for s in arm_intervals(case_rows, "source_only")}
    rows = []
    for arm, t in done.items():
        s = stats.get(arm, {})
        rows.append({"arm": arm, "n_target": len(t.target), **mean_metrics(t.target), "dice_ci": _rounded(s.get("ci")),
                     "diff_vs_source": s.get("diff"), "diff_ci": _rounded(s.get("diff_ci")), "better": s.get("better"),
                     "source_dice_mean": mean_metrics(t.source)["dice_mean"] if t.source else float("nan"),
                     "cpu_seconds": round(t.seconds, 1), "note": t.note})
    return rows, case_rows + source_rows


def plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Mean target Dice per arm with its bootstrap interval, and the source domain's mean Dice beside it."""
    fig, (ax,) = figure(1, width=7.0)
    x = np.arange(len(rows))
    means = [r["dice_mean"] for r in rows]
    lo = [m - (r["dice_ci"] or (m, m))[0] for m, r in zip(means, rows)]
    hi = [(r["dice_ci"] or (m, m))[1] - m for m, r in zip(means, rows)]
    ax.bar(x - 0.2, means, 0.4, yerr=[lo, hi], capsize=3, color="#1f77b4", label="target (leave one case out)")
    ax.bar(x + 0.2, [r["source_dice_mean"] for r in rows], 0.4, color="#999999", label="source held-out cases")
    ax.set_xticks(x, [r["arm"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean Dice (WT, TC, ET)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("a new site: transfer arms, 95 % bootstrap intervals")
    return save_figure(fig, path)


def run(source: Sequence[str | Path], target: Sequence[str | Path], out: str | Path, *, preset: str = "smoke",
        device: str | None = None, progress: bool = True, config: SiteConfig | None = None) -> dict[str, Any]:
    """Run the site comparison; write ``results.{csv,md,png}``, ``per_case.csv``, ``summary.json`` into ``out``."""
    from .catalog import resolve_preset
    from .runtime import torch_threads

    cfg = config or resolve_preset(PRESETS, preset, "transfer (--source-data/--target-data)")
    unknown = [a for a in cfg.arms if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown site arm {unknown[0]!r}; valid: {', '.join(ARMS)}")
    if "source_only" not in cfg.arms:
        raise ConfigError("the site experiment compares every arm with source_only; keep it")
    for path in (*source, *target):
        if not Path(path).is_dir():
            raise ConfigError(f"{path}: data folder not found")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    with torch_threads(cfg.source.threads):
        sites = split_sites(source, target, cfg)
        done = run_site(cfg, sites, out, device, progress)
    timer.lap("train+score")
    rows, case_rows = table(done)
    plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, ("arm", "domain", "case_id", "seconds",
                                                *case_columns(row_groups(case_rows))))
    notes = [f"preset `{preset if config is None else 'custom'}`: {len(sites.source_train)} source training cases,"
             f" {len(sites.source_test)} source held-out, {len(sites.target)} target cases (leave one out)",
             f"budgets (steps x batch x patch): source/pooled/synthetic {cfg.source.steps} x {cfg.source.batch_size}"
             f" x {cfg.source.patch[0]}^3; target-only {cfg.target.steps}; fine-tuning {cfg.finetune.steps} at lr"
             f" {cfg.finetune.lr:g} (low lr: a tenth); TENT {cfg.adapt_steps} steps",
             "dice_ci: 95 % percentile bootstrap of the mean over target cases; diff_vs_source: paired mean"
             " difference from source_only (better: cases improved); source_dice_mean: fold 1's model on the"
             " held-out source cases; cpu_seconds: training time of the arm, its source training included"]
    summary = {"experiment": "transfer", "mode": "site", "preset": preset, "model": cfg.model,
               "source": [str(s) for s in source], "target": [str(t) for t in target], "rows": rows,
               "target_cases": [c.case_id for c in sites.target],
               "source_test": [c.case_id for c in sites.source_test], "timings_s": {**timer.stages,
                                                                                     "total": timer.total()}}
    columns = table_columns(COLUMNS, rows)  # WT/TC/ET data: COLUMNS; others: their groups' scores
    paths = write_results(out, rows, columns, title="A new site: source, target, pooled, fine-tuned, TENT",
                          notes=notes, summary=summary)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}
