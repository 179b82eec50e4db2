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
  (I3D, Carreira & Zisserman 2017, arXiv:1705.07750; :mod:`brats_seg.training.transfer`).
  Without ``weights_2d`` a *randomly initialized* 2-D state dict is written and used, and
  every row says so: it tests the plumbing, not the value of ImageNet features.

Frozen means the encoder (``model.encoder_prefixes``) is frozen for the whole budget.
Every arm gets the same :class:`~brats_seg.experiments.common.Budget` on the target data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import REGIONS
from ..errors import ConfigError
from .common import (
    METRIC_COLUMNS,
    Budget,
    DataPlan,
    Timer,
    build_cache,
    ensure_data,
    figure,
    mean_metrics,
    per_case_rows,
    progress_bar,
    resolve_preset,
    save_figure,
    score_checkpoints,
    split_dataset,
    torch_threads,
    train_arm,
    write_csv,
    write_results,
)

RANDOM_2D_NOTE = "random 2-D weights (NOT pretrained; no --weights-2d given)"


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
               overlap=0.5)

PRESETS: dict[str, TransferConfig] = {
    "smoke": TransferConfig(sizes=(2, 4), budget=_SMOKE, source_budget=_SMOKE, pretrain_budget=_SMOKE,
                            source_cases=2, source_spacing=4.0, data=DataPlan(n_test=1)),
    "full": TransferConfig(sizes=(5, 10, 25, 50), budget=_FULL,
                           source_budget=dataclasses.replace(_FULL, epochs=40), pretrain_budget=_FULL,
                           source_cases=200, source_spacing=1.0,
                           data=DataPlan(n_test=20, synth_cases=100, synth_spacing=1.0)),
}

COLUMNS: tuple[str, ...] = ("strategy", "frozen", "n_train", *METRIC_COLUMNS, "train_seconds", "seconds_per_case",
                            "steps", "init", "note")


# --------------------------------------------------------------------------- initial weights per strategy


@dataclass
class Context:
    """What the strategies need: the config, the folders, the full training cache, the device."""

    cfg: TransferConfig
    out: Path
    pool_cache: Path
    device: str | None
    progress: bool
    weights_2d: str | None
    prep_seconds: dict[str, float] = field(default_factory=dict)


def random_resnet_2d(model_name: str, preset: str, path: Path, seed: int = 0) -> Path:
    """Write a torchvision-format 2-D ResNet state dict with RANDOM weights (He init; BN identity)
    whose names and widths fit the encoder of ``model_name`` at ``preset``. Only for testing the
    inflation path: it carries no pretrained knowledge."""
    import torch

    from ..files import atomic_path
    from ..models.registry import build_model

    model = build_model(model_name, preset=preset)
    prefixes = tuple(getattr(model, "encoder_prefixes", ()) or ())
    own = {k[len(p):]: v for k, v in model.state_dict().items() for p in prefixes if k.startswith(p)}
    if "conv1.weight" not in own or own["conv1.weight"].ndim != 5:
        raise ConfigError(f"model {model_name!r} has no ResNet encoder (conv1, layer1..4) to inflate 2-D weights into")
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, value in own.items():
        if value.ndim == 5:
            o, i, _, kh, kw = value.shape
            i = 3 if key == "conv1.weight" else i  # RGB stem, as torchvision's
            state[key] = torch.randn(o, i, kh, kw, generator=gen) * (2.0 / (i * kh * kw)) ** 0.5
        elif key.endswith("running_var") or key.endswith(".weight") and value.ndim == 1:
            state[key] = torch.ones_like(value)
        else:
            state[key] = torch.zeros_like(value)
    width = own[max(k for k in own if k.startswith("layer4") and k.endswith("weight"))].shape[0]
    state["fc.weight"] = torch.zeros(1000, width)  # torchvision's classifier: reported as unexpected, ignored
    state["fc.bias"] = torch.zeros(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def pretrain_weights(ctx: Context) -> tuple[Path | None, str]:
    """Models Genesis restoration pretraining (:func:`brats_seg.training.pretrain.pretrain`) on the images
    of every pool case (labels unused); returns its ``last.pt``, whose encoder and decoder (not the
    head) ``init_from`` loads. Reuses a finished pretraining found in ``out/prep/pretrain``."""
    import contextlib
    import time

    from ..data.cache import cached_case_ids
    from ..training.pretrain import PretrainConfig, pretrain

    run = ctx.out / "prep" / "pretrain"
    weights = run / "checkpoints" / "last.pt"
    b = ctx.cfg.pretrain_budget
    t0 = time.perf_counter()
    if not (run / "done.json").is_file():
        cfg = PretrainConfig(data=str(ctx.pool_cache), out=str(run), model=ctx.cfg.model, preset=b.preset,
                             epochs=b.epochs, steps_per_epoch=b.steps_per_epoch, patch=tuple(b.patch),
                             batch_size=b.batch_size, lr=b.lr, seed=ctx.cfg.seed, device=ctx.device,
                             workers=b.workers, threads=b.threads, progress=ctx.progress)
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "pretrain.log", "a") as log, contextlib.redirect_stdout(log):
            pretrain(cfg)
        (run / "done.json").write_text('{"done": true}')
    ctx.prep_seconds["pretrain"] = round(time.perf_counter() - t0, 2)
    n_pool = len(cached_case_ids(ctx.pool_cache))
    return weights, f"Models Genesis restoration pretraining on {n_pool} cases' images (labels unused), {b.steps} steps"


def synth2real_weights(ctx: Context) -> tuple[Path | None, str]:
    """Train on synthetic source cases (labels used) and return that checkpoint."""
    from ..data.synth import synthesize_dataset
    from .common import split_dataset as _split

    cfg = ctx.cfg
    source = ctx.out / "prep" / "synth_source"
    if not (source / "synth.json").is_file():
        synthesize_dataset(source, cfg.source_cases, seed=cfg.seed + 1000, spacing=cfg.source_spacing,
                           progress=ctx.progress)
    plan = dataclasses.replace(cfg.data, n_test=0)
    cache = build_cache(_split(source, plan).train, ctx.out / "prep" / "synth_cache", cfg.data)
    arm = train_arm("synth-source", cache, ctx.out / "prep" / "synth_run", cfg.source_budget, model=cfg.model,
                    seed=cfg.seed, device=ctx.device)
    ctx.prep_seconds["synth_source"] = round(arm.train_seconds, 2)
    return arm.checkpoint, (f"supervised on {cfg.source_cases} synthetic cases ({cfg.source_spacing:g} mm),"
                            f" {cfg.source_budget.steps} steps")


def inflated_weights(ctx: Context) -> tuple[Path | None, str]:
    """The given 2-D file, or a random one written into ``out/prep`` and labeled as such."""
    if ctx.weights_2d:
        path = Path(ctx.weights_2d)
        if not path.is_file():
            raise ConfigError(f"{path}: --weights-2d file not found")
        return path, f"inflated 2-D weights from {path.name}"
    path = ctx.out / "prep" / "random_resnet2d_NOT_PRETRAINED.pt"
    if not path.is_file():
        random_resnet_2d(ctx.cfg.model, ctx.cfg.budget.preset, path, seed=ctx.cfg.seed)
    return path, RANDOM_2D_NOTE


STRATEGIES: dict[str, Callable[[Context], tuple[Path | None, str]] | None] = {
    "scratch": None,
    "pretrain": pretrain_weights,
    "synth2real": synth2real_weights,
    "inflated2d": inflated_weights,
}
"""Strategy -> function giving (initial weights file or None, note); ``None``: random init."""


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
        progress: bool = True, config: TransferConfig | None = None, weights_2d: str | None = None) -> dict[str, Any]:
    """Run every (strategy, frozen, size) arm; write ``results.{csv,md,png}`` and ``summary.json`` into ``out``."""
    cfg = config or resolve_preset(PRESETS, preset, "transfer")
    with torch_threads(cfg.budget.threads):
        return _run(cfg, data, Path(out), preset if config is None else "custom", device, progress, weights_2d)


def _run(cfg: TransferConfig, data: str | Path | None, out: Path, preset: str, device: str | None,
         progress: bool, weights_2d: str | None = None) -> dict[str, Any]:
    from ..models.registry import model_info

    unknown = [s for s in cfg.strategies if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown transfer strategy {unknown[0]!r}; valid: {', '.join(STRATEGIES)}")
    model_info(cfg.model)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    root = ensure_data(data, out, cfg.data, progress=progress)
    split = split_dataset(root, cfg.data)
    order = np.random.default_rng(cfg.seed).permutation(len(split.train))
    pool = [split.train[i] for i in order]
    sizes = sorted({min(int(s), len(pool)) for s in cfg.sizes if int(s) > 0})
    caches = {n: build_cache(pool[:n], out / "cache" / f"n{n}", cfg.data) for n in sizes}
    ctx = Context(cfg, out, caches[sizes[-1]], device, progress, weights_2d)
    timer.lap("data")

    inits: dict[str, tuple[Path | None, str]] = {}
    for s in cfg.strategies:
        maker = STRATEGIES[s]
        inits[s] = (None, "random initialization") if maker is None else maker(ctx)
    timer.lap("initial weights")

    arms = [(s, frozen, n) for n in sizes for s in cfg.strategies
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
        arm = train_arm(name, caches[n], out / "runs" / name, cfg.budget, model=cfg.model, seed=cfg.seed,
                        init_from=init, freeze_encoder_epochs=cfg.budget.epochs if frozen else 0, device=device)
        scores = score_checkpoints([arm.checkpoint], split.test, overlap=cfg.budget.overlap, device=device)
        rows.append({**row, **mean_metrics(scores), "train_seconds": round(arm.train_seconds, 2)})
        case_rows += per_case_rows(name, scores, strategy=strategy, frozen=frozen, n_train=n)
        bar.update(1)
    bar.close()
    timer.lap("train+score")
    plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, ("arm", "strategy", "frozen", "n_train", "case_id", "seconds",
                                                *(f"{m}_{r}" for r in REGIONS for m in ("dice", "hd95"))))
    notes = [f"preset `{preset}`: {split.describe()}; training sets are nested"
             f" subsets of sizes {', '.join(map(str, sizes))}",
             f"model `{cfg.model}` ({cfg.budget.preset}); every arm: {cfg.budget.steps} steps of"
             f" {cfg.budget.batch_size} x {'x'.join(map(str, cfg.budget.patch))} crops on the target data,"
             f" seed {cfg.seed}",
             "frozen: encoder parameters frozen for the whole budget (not applicable to scratch)",
             *(f"{s}: {inits[s][1]}" for s in cfg.strategies)]
    summary = {"experiment": "transfer", "preset": preset, "data": str(root), "model": cfg.model, "rows": rows,
               "sizes": sizes, "inits": {s: {"file": str(p) if p else None, "note": n} for s, (p, n) in inits.items()},
               "prep_seconds": ctx.prep_seconds, "test_cases": [c.case_id for c in split.test],
               "timings_s": {**timer.stages, "total": timer.total()}}
    paths = write_results(out, rows, COLUMNS, title="Transfer learning: initialization x frozen encoder x data size",
                          notes=notes, summary=summary)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}
