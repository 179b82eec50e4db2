"""Experiment ``architectures``: every registered model under the same training budget.

The review behind this project (and the BraTS reports it summarizes: Isensee et al.,
nnU-Net, arXiv:1809.10486 and arXiv:2011.00848; Myronenko 2018, arXiv:1810.11654) asks how much
the architecture matters once training is fixed. Each model is trained on the same cases with
the same :class:`~brats_seg.experiments.arms.Budget` and seed, then predicts the same held-out
cases. The table gives Dice and HD95 per region (means over held-out cases), trainable parameters,
GFLOPs per training crop, training seconds and prediction seconds per case; ``results.png`` draws
Dice per region and Dice against parameters. The ``vnas`` arm trains a searched genotype: the one
given (``--genotype``), else one found by a short search on the training cases (:class:`SearchBudget`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_OVERLAP
from .arms import CPU_BUDGET, Budget, train_arm
from .catalog import resolve_preset
from .datasets import CPU_PLAN, DataPlan, data_label, training_data
from .figures import figure, region_bars, save_figure
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


@dataclass(frozen=True)
class SearchBudget:
    """The V-NAS search the ``vnas`` arm runs on the training cases when no genotype is given (the paper's
    ``layer`` space, the training budget's model size and batch). ``patch``: None for the training budget's;
    the supernet holds three candidates per layer, about three times the memory of the network it searches."""

    epochs: int = 3
    warmup_epochs: int = 1
    steps_per_epoch: int = 4
    patch: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class ArchitecturesConfig:
    """``models``: registry names (empty: every registered model). ``budget``: shared by all.
    ``model_kwargs``: per-model build arguments, e.g. ``{"vnas": model_arguments(<genotype.json>)}``;
    without a ``vnas`` genotype the arm searches one first (``search``)."""

    models: tuple[str, ...] = ()
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    data: DataPlan = field(default_factory=DataPlan)
    search: SearchBudget = field(default_factory=SearchBudget)
    seed: int = 0


PRESETS: dict[str, ArchitecturesConfig] = {
    # CPU, seconds: plain U-Net, its residual twin and V-NAS cells, answering two of the review's questions.
    "smoke": ArchitecturesConfig(models=("unet3d", "resunet", "vnas"),
                                 budget=Budget(preset="tiny", epochs=1, steps_per_epoch=4, patch=(32, 32, 32),
                                               batch_size=2, threads=1, augment=False),
                                 search=SearchBudget(epochs=3, warmup_epochs=1, steps_per_epoch=2)),
    # real data on one CPU core, about 20 minutes: train on the first --data folder, score the others
    # (vnas left out: its search would double the cost).
    "cpu": ArchitecturesConfig(models=("unet3d", "resunet", "nnunet"), budget=CPU_BUDGET, data=CPU_PLAN),
    # one GPU, hours: every registered model at its BraTS size, 20 x 100 steps of 128^3 crops, 20% held out.
    "full": ArchitecturesConfig(models=(),
                                budget=Budget(preset="base", epochs=20, steps_per_epoch=100, patch=(128, 128, 128),
                                              batch_size=2, workers=4, overlap=DEFAULT_OVERLAP),
                                data=DataPlan(n_test=20, synth_cases=100, synth_spacing=1.0),
                                search=SearchBudget(epochs=10, warmup_epochs=3, steps_per_epoch=100,
                                                    patch=(64, 64, 64))),
}

QUESTIONS: dict[str, tuple[str, str, str]] = {
    "residual connections": ("resunet", "unet3d", "residual units vs plain double convolutions (same U-Net depth)"),
    "architecture search": ("vnas", "unet3d", "V-NAS searched cells vs the hand-designed 3-D U-Net"),
    "nnU-Net configuration": ("nnunet", "unet3d", "nnU-Net's plain U-Net recipe vs the 3-D U-Net"),
}
"""Open questions of the review answered by a pair of rows: (model, baseline, what differs)."""

COLUMNS: tuple[str, ...] = ("model", "parameters", "gflops", *METRIC_COLUMNS, "train_seconds", "seconds_per_case",
                            "n_train", "n_test", "steps")


def answers(rows: list[dict[str, Any]]) -> str:
    """One line per question of :data:`QUESTIONS` whose two models both ran: the mean-Dice difference."""
    by = {r["model"]: r for r in rows}
    lines = []
    for question, (model, base, what) in QUESTIONS.items():
        if model in by and base in by:
            d = by[model]["dice_mean"] - by[base]["dice_mean"]
            lines.append(f"- {question} ({what}): {model} {by[model]['dice_mean']:.3f} vs {base}"
                         f" {by[base]['dice_mean']:.3f} mean Dice ({d:+.3f}) on {by[model]['n_test']} held-out cases")
        else:
            lines.append(f"- {question}: not measured ({model} and {base} must both be in the run)")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: held-out Dice per region per model. Right: mean Dice against parameters (log scale if they span
    more than 10x)."""
    fig, (left, right) = figure(2)
    region_bars(left, [r["model"] for r in rows], rows)
    left.set_title("same budget, held-out cases")
    for r in rows:
        right.scatter(r["parameters"], r["dice_mean"], s=30)
        right.annotate(r["model"], (r["parameters"], r["dice_mean"]), fontsize=7, xytext=(3, 3),
                       textcoords="offset points")
    params = [r["parameters"] for r in rows]
    if max(params) > 10 * min(params):
        from matplotlib.ticker import NullFormatter

        right.set_xscale("log")
        right.xaxis.set_minor_formatter(NullFormatter())
    else:
        right.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    right.set_xlabel("trainable parameters")
    right.set_ylabel("mean Dice (WT, TC, ET)")
    right.set_ylim(0, 1)
    return save_figure(fig, path)


def run(data: str | Path | None, out: str | Path, *, preset: str = "smoke", device: str | None = None,
        progress: bool = True, config: ArchitecturesConfig | None = None,
        model_kwargs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train and score every model of the preset (or ``config``); write ``results.{csv,md,png}`` into ``out``.
    ``model_kwargs`` adds per-model build arguments (e.g. a searched V-NAS genotype)."""
    cfg = config or resolve_preset(PRESETS, preset, "architectures")
    if model_kwargs:
        cfg = dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs, **model_kwargs})
    with torch_threads(cfg.budget.threads):
        return _run(cfg, data, Path(out), preset if config is None else "custom", device, progress)


def searched_arm(cfg: ArchitecturesConfig, cache: Path, out: Path, device: str | None,
                 progress: bool) -> tuple[dict[str, Any], str]:
    """Build arguments of the ``vnas`` arm and where its genotype came from: the one given, or a short
    search (:class:`SearchBudget`) on the training cache, in ``out`` (resumed if found there)."""
    given = dict(cfg.model_kwargs.get("vnas", {}))
    if "genotype" in given:
        return given, "searched genotype given (--genotype)"
    from ..models.nas.genotype import describe_genotype, model_arguments
    from ..training.search import SearchConfig, search

    s, b = cfg.search, cfg.budget
    genotype = search(cache, out, SearchConfig(epochs=s.epochs, warmup_epochs=s.warmup_epochs,
                                               steps_per_epoch=s.steps_per_epoch, patch_size=list(s.patch or b.patch),
                                               batch_size=b.batch_size, preset=b.preset, seed=cfg.seed,
                                               device=device, threads=b.threads),
                      resume=(out / "search_state.pt").is_file(), progress=progress)
    return {**given, **model_arguments(genotype)}, (
        f"genotype from a short search on the training cases ({s.epochs} epochs, {s.warmup_epochs} of them"
        f" warm-up, x {s.steps_per_epoch} steps; {out.name}/): {describe_genotype(genotype)}")


def _run(cfg: ArchitecturesConfig, data: str | Path | None, out: Path, preset: str, device: str | None,
         progress: bool) -> dict[str, Any]:
    from ..models.profile import profile_model
    from ..models.registry import list_models, model_info

    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    models = list(cfg.models) or list_models()
    for m in models:
        model_info(m)  # unknown names fail before any work
    root, split, cache = training_data(data, out, cfg.data, progress=progress)
    timer.lap("data")
    kwargs = dict(cfg.model_kwargs)
    if "vnas" in models:
        kwargs["vnas"], vnas_note = searched_arm(cfg, cache, out / "search", device, progress)
        timer.lap("search")
    rows, case_rows = [], []
    bar = progress_bar(len(models), "architectures", progress)
    for name in models:
        arm = train_arm(name, cache, out / "runs" / name, cfg.budget, model=name, seed=cfg.seed, device=device,
                        model_kwargs=kwargs.get(name))
        scores = score_checkpoints([arm.checkpoint], split.test, overlap=cfg.budget.overlap, device=device)
        gflops = profile_model(name, preset=cfg.budget.preset, patch=cfg.budget.patch, **kwargs.get(name, {}))["gflops"]
        rows.append({"model": name, "parameters": arm.parameters, "gflops": round(gflops, 3), **mean_metrics(scores),
                     "train_seconds": round(arm.train_seconds, 2), "n_train": len(split.train),
                     "n_test": len(split.test), "steps": cfg.budget.steps})
        case_rows += per_case_rows(name, scores)
        bar.update(1)
    bar.close()
    timer.lap("train+score")
    plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, ("arm", "case_id", "seconds",
                                                *case_columns(row_groups(case_rows))))
    best = max(rows, key=lambda r: r["dice_mean"])
    notes = [f"preset `{preset}`: {split.describe()}",
             f"budget per model: {cfg.budget.steps} steps of {cfg.budget.batch_size} x "
             f"{'x'.join(map(str, cfg.budget.patch))} crops, model size `{cfg.budget.preset}`, seed {cfg.seed}",
             "Dice and HD95 (mm) are means over the held-out cases; seconds_per_case is prediction"
             " (preprocessing + sliding window) on " + (device or "the default device"),
             f"gflops: one forward pass on a 4 x {'x'.join(map(str, cfg.budget.patch))} crop",
             f"highest mean Dice: {best['model']} ({best['dice_mean']:.3f})"]
    if "vnas" in models:
        notes.append(f"vnas: {vnas_note}")
    summary = {"experiment": "architectures", "preset": preset, "data": data_label(root), "rows": rows,
               "train_cases": [c.case_id for c in split.train], "test_cases": [c.case_id for c in split.test],
               "timings_s": {**timer.stages, "total": timer.total()}}
    columns = table_columns(COLUMNS, rows)  # WT/TC/ET data: COLUMNS; others: their groups' scores
    paths = write_results(out, rows, columns, title="Architectures under one training budget", notes=notes,
                          sections={"The review's questions": answers(rows)}, summary=summary)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}
