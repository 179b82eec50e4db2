"""Experiment ``transfer``: where should the first weights come from when labeled data is scarce?

Four initializations of one backbone U-Net (``resnet_unet`` by default), each fine-tuned on
the target data with the encoder trainable or frozen, at several training-set sizes (nested
subsets of the training cases, so a larger set contains the smaller ones):

- ``scratch``: random initialization (the baseline);
- ``pretrain``: self-supervised Models Genesis restoration pretraining (Zhou et al., MICCAI 2019,
  arXiv:1908.06912) on the images of every training case, labels unused;
- ``synth2real``: supervised training on synthetic cases (:mod:`brats_seg.data.synth`), then
  ``init_from`` on the target cases;
- ``inflated2d``: a torchvision-format 2-D ResNet state dict inflated into the 3-D encoder
  (I3D, Carreira & Zisserman 2017, arXiv:1705.07750; :mod:`brats_seg.training.weight_transfer`).
  Without ``weights_2d`` a *randomly initialized* 2-D state dict is written and used, and
  every row says so: it tests the plumbing, not the value of ImageNet features.

The strategies' weights come from :mod:`.transfer_inits`. Frozen means the encoder
(``model.encoder_prefixes``) is frozen for the whole budget.
Every arm gets the same :class:`~brats_seg.experiments.arms.Budget` on the target data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_OVERLAP
from ..errors import ConfigError
from .arms import CPU_BUDGET, Budget, train_arm
from .catalog import resolve_preset
from .datasets import CPU_PLAN, DataPlan, Roots, Split, build_cache, data_label, ensure_data, split_dataset
from .figures import figure, save_figure
from .heldout_scores import (
    METRIC_COLUMNS,
    case_columns,
    mean_metrics,
    per_case_rows,
    row_groups,
    score_checkpoints,
    table_columns,
)
from .runtime import Timer, progress_bar, torch_threads
from .tables import write_csv, write_results
from .transfer_inits import RANDOM_2D_NOTE, STRATEGIES, Context, initial_weights, random_resnet_2d

__all__ = ["TransferConfig", "PRESETS", "COLUMNS", "RANDOM_2D_NOTE", "STRATEGIES", "random_resnet_2d", "run"]


@dataclass(frozen=True)
class TransferConfig:
    """``sizes``: training-set sizes (cases; capped at the training cases available). ``freeze``:
    encoder frozen settings to run for every strategy but ``scratch``. ``source_cases``: synthetic
    cases for ``synth2real`` (made at ``source_spacing`` mm, seed ``seed + 1000``, so never the
    target's cases). ``source_budget``/``pretrain_budget``: the preparatory trainings."""

    model: str = "resnet_unet"
    strategies: tuple[str, ...] = ("scratch", "pretrain", "synth2real", "inflated2d")
    sizes: tuple[int, ...] = (2, 4)
    freeze: tuple[bool, ...] = (False, True)
    budget: Budget = field(default_factory=Budget)
    source_budget: Budget = field(default_factory=Budget)
    pretrain_budget: Budget = field(default_factory=Budget)
    source_cases: int = 2
    source_spacing: float = 4.0
    data: DataPlan = field(default_factory=DataPlan)
    seed: int = 0


_SMOKE = Budget(preset="tiny", epochs=1, steps_per_epoch=3, patch=(32, 32, 32), batch_size=2, threads=1,
                augment=False)
_FULL = Budget(preset="base", epochs=20, steps_per_epoch=100, patch=(128, 128, 128), batch_size=2, workers=4,
               overlap=DEFAULT_OVERLAP)

PRESETS: dict[str, TransferConfig] = {
    "smoke": TransferConfig(sizes=(2, 4), budget=_SMOKE, source_budget=_SMOKE, pretrain_budget=_SMOKE,
                            source_cases=2, source_spacing=4.0, data=DataPlan(n_test=1)),
    # real data on one CPU core, about 20 minutes: scratch vs synthetic-to-real on the four training cases
    # (80 steps on 8 synthetic cases at 2 mm as the source); no MedicalNet-style weights exist offline. The
    # scratch arm is the architectures cpu preset's unet3d arm (same model, seed, budget and cases).
    "cpu": TransferConfig(model="unet3d", strategies=("scratch", "synth2real"), sizes=(4,), freeze=(False,),
                          budget=CPU_BUDGET, source_budget=dataclasses.replace(CPU_BUDGET, epochs=2),
                          pretrain_budget=CPU_BUDGET, source_cases=8,
                          source_spacing=2.0, data=CPU_PLAN),
    "full": TransferConfig(sizes=(5, 10, 25, 50), budget=_FULL,
                           source_budget=dataclasses.replace(_FULL, epochs=40), pretrain_budget=_FULL,
                           source_cases=200, source_spacing=1.0,
                           data=DataPlan(n_test=20, synth_cases=100, synth_spacing=1.0)),
}

COLUMNS: tuple[str, ...] = ("strategy", "frozen", "n_train", *METRIC_COLUMNS, "train_seconds", "seconds_per_case",
                            "steps", "init", "note")


# --------------------------------------------------------------------------- the experiment


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Mean held-out Dice against training-set size; one line per strategy, dashed when frozen."""
    fig, (ax,) = figure(1, width=6.0)
    colors = dict(zip(STRATEGIES, ("#444444", "#1f77b4", "#2ca02c", "#d62728")))
    for (strategy, frozen) in dict.fromkeys((r["strategy"], r["frozen"]) for r in rows):
        pts = sorted((r["n_train"], r["dice_mean"]) for r in rows
                     if r["strategy"] == strategy and r["frozen"] == frozen and not np.isnan(r["dice_mean"]))
        if pts:
            ax.plot(*zip(*pts), marker="o", ls="--" if frozen else "-", color=colors.get(strategy),
                    label=f"{strategy}{' (frozen encoder)' if frozen else ''}")
    ax.set_xticks(sorted({r["n_train"] for r in rows}))
    ax.set_xlabel("labeled training cases")
    ax.set_ylabel("mean held-out Dice (WT, TC, ET)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("transfer learning vs training-set size")
    return save_figure(fig, path)


def _short(path: Path | None, root: Path) -> str:
    if path is None:
        return "-"
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return Path(path).name


def run(data: str | Path | None, out: str | Path, *, preset: str = "smoke", device: str | None = None,
        progress: bool = True, config: TransferConfig | None = None, weights_2d: str | None = None,
        source_data=None, target_data=None) -> dict[str, Any]:
    """Run every (strategy, frozen, size) arm; write ``results.{csv,md,png}`` and ``summary.json`` into ``out``.
    With ``source_data`` and ``target_data`` (folders): the new-site comparison instead (:mod:`.site`)."""
    if source_data or target_data:
        from . import site

        if not (source_data and target_data) or data or weights_2d:
            raise ConfigError("the new-site comparison takes --source-data and --target-data (both), not --data"
                              " or --weights-2d")
        return site.run(list(source_data), list(target_data), out, preset=preset, device=device, progress=progress)
    cfg = config or resolve_preset(PRESETS, preset, "transfer")
    with torch_threads(cfg.budget.threads):
        return _run(cfg, data, Path(out), preset if config is None else "custom", device, progress, weights_2d)


def check_config(cfg: TransferConfig) -> None:
    """Unknown strategies or models fail before any work."""
    from ..models.registry import model_info

    unknown = [s for s in cfg.strategies if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown transfer strategy {unknown[0]!r}; valid: {', '.join(STRATEGIES)}")
    model_info(cfg.model)


@dataclass
class TargetData:
    """The target dataset: its held-out split and one cache per training-set size (nested subsets)."""

    root: Roots
    split: Split
    sizes: list[int]
    caches: dict[int, Path]


def target_data(cfg: TransferConfig, data: str | Path | None, out: Path, progress: bool) -> TargetData:
    """Split the target data and cache the nested training sets (a seeded order of the training cases)."""
    root = ensure_data(data, out, cfg.data, progress=progress)
    split = split_dataset(root, cfg.data)
    order = np.random.default_rng(cfg.seed).permutation(len(split.train))
    pool = [split.train[i] for i in order]
    sizes = sorted({min(int(s), len(pool)) for s in cfg.sizes if int(s) > 0})
    caches = {n: build_cache(pool[:n], out / "cache" / f"n{n}", cfg.data) for n in sizes}
    return TargetData(root, split, sizes, caches)


def run_arms(cfg: TransferConfig, target: TargetData, inits: dict, out: Path, device: str | None,
             progress: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fine-tune and score every (strategy, frozen, size) arm: (table rows, per-case rows)."""
    arms = [(s, frozen, n) for n in target.sizes for s in cfg.strategies
            for frozen in ((False,) if s == "scratch" else cfg.freeze)]
    rows, case_rows = [], []
    bar = progress_bar(len(arms), "transfer", progress)
    for strategy, frozen, n in arms:
        init, note = inits[strategy]
        row: dict[str, Any] = {"strategy": strategy, "frozen": frozen, "n_train": n, "steps": cfg.budget.steps,
                               "init": _short(init, out), "note": note}
        if strategy != "scratch" and init is None:  # the strategy could not be prepared: say so, score nothing
            rows.append({**row, **{c: float("nan") for c in (*METRIC_COLUMNS, "seconds_per_case")}})
            bar.update(1)
            continue
        name = f"{strategy}{'-frozen' if frozen else ''}-n{n}"
        arm = train_arm(name, target.caches[n], out / "runs" / name, cfg.budget, model=cfg.model, seed=cfg.seed,
                        init_from=init, freeze_encoder_epochs=cfg.budget.epochs if frozen else 0, device=device)
        scores = score_checkpoints([arm.checkpoint], target.split.test, overlap=cfg.budget.overlap, device=device)
        rows.append({**row, **mean_metrics(scores), "train_seconds": round(arm.train_seconds, 2)})
        case_rows += per_case_rows(name, scores, strategy=strategy, frozen=frozen, n_train=n)
        bar.update(1)
    bar.close()
    return rows, case_rows


def write_outputs(cfg: TransferConfig, ctx: Context, target: TargetData, inits: dict, rows: list[dict],
                  case_rows: list[dict], preset: str, timer: Timer) -> dict[str, Any]:
    """``results.{csv,md,png}``, ``per_case.csv`` and ``summary.json``; returns the summary."""
    out = ctx.out
    plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, ("arm", "strategy", "frozen", "n_train", "case_id", "seconds",
                                                *case_columns(row_groups(case_rows))))
    notes = [f"preset `{preset}`: {target.split.describe()}; training sets are nested"
             f" subsets of sizes {', '.join(map(str, target.sizes))}",
             f"model `{cfg.model}` ({cfg.budget.preset}); every arm: {cfg.budget.steps} steps of"
             f" {cfg.budget.batch_size} x {'x'.join(map(str, cfg.budget.patch))} crops on the target data,"
             f" seed {cfg.seed}",
             "frozen: encoder parameters frozen for the whole budget (not applicable to scratch)",
             *(f"{s}: {inits[s][1]}" for s in cfg.strategies)]
    summary = {"experiment": "transfer", "preset": preset, "data": data_label(target.root), "model": cfg.model,
               "rows": rows, "sizes": target.sizes,
               "inits": {s: {"file": str(p) if p else None, "note": n} for s, (p, n) in inits.items()},
               "prep_seconds": ctx.prep_seconds, "test_cases": [c.case_id for c in target.split.test],
               "timings_s": {**timer.stages, "total": timer.total()}}
    columns = table_columns(COLUMNS, rows)  # WT/TC/ET data: COLUMNS; others: their groups' scores
    paths = write_results(out, rows, columns, title="Transfer learning: initialization x frozen encoder x data size",
                          notes=notes, summary=summary)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}


def _run(cfg: TransferConfig, data: str | Path | None, out: Path, preset: str, device: str | None,
         progress: bool, weights_2d: str | None = None) -> dict[str, Any]:
    check_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    target = target_data(cfg, data, out, progress)
    ctx = Context(cfg, out, target.caches[target.sizes[-1]], device, progress, weights_2d)
    timer.lap("data")
    inits = initial_weights(ctx)
    timer.lap("initial weights")
    rows, case_rows = run_arms(cfg, target, inits, out, device, progress)
    timer.lap("train+score")
    return write_outputs(cfg, ctx, target, inits, rows, case_rows, preset, timer)
