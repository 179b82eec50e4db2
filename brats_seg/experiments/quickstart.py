"""The quickstart: data -> training -> prediction of held-out cases -> evaluation -> report.

``brats-seg quickstart`` (and ``make demo``) runs the whole toolkit once on a
laptop. With no data it synthesizes a small dataset; with ``--data`` it uses any
dataset folder the toolkit reads. Cases are split into a training set (itself
split into train/validation by the trainer, for checkpoint selection) and a
held-out set that nothing in training sees; the held-out cases are predicted from
their raw files, exactly as ``brats-seg predict`` would, and scored. The report
(:mod:`.quickstart_report`) says whether the cases were synthetic, and for real
cases how many were scored and the 95 % bootstrap interval of each mean.

The run folder holds::

    data/            synthetic cases (when no --data is given)
    cache/           preprocessed training cases
    run/             the training run (checkpoints, log.csv, curves.png)
    heldout.csv      the held-out cases (a manifest any command reads)
    predictions/     label maps of the held-out cases
    evaluation/      metrics.csv, summary.json/.md, boxplots.png
    overlays/        one picture per held-out case, prediction beside reference
    quickstart.json, report.md, report.html
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DEFAULT_OVERLAP, PreprocessConfig, to_dict
from ..data.reading.cases import Case
from .datasets import DataPlan, Split, split_dataset
from .quickstart_report import draw_overlays, heldout_intervals, write_report
from .runtime import Timer


@dataclass(frozen=True)
class QuickstartConfig:
    """Settings of one quickstart run; the defaults train on CPU in a few minutes.

    ``heldout``: fraction of cases kept out of training (at least one case, and
    at least two cases stay for training). ``model_kwargs``: build arguments of the
    model (``None``: :data:`QUICK_UNET` for the default ``unet3d``, none for others).
    ``time_budget``: minutes of training (the trainer's ``--time-budget``: the learning
    rate decays on elapsed time, so a slow machine trains fewer steps, not longer);
    ``None`` trains ``epochs`` x ``steps_per_epoch`` steps instead (reproducible).
    """

    out: str = "quickstart"
    data: str | None = None
    layout: str | None = None
    label_scheme: str | None = None
    synth_cases: int = 30
    synth_spacing: float = 3.0
    heldout: float = 0.2
    model: str = "unet3d"
    preset: str = "tiny"
    model_kwargs: dict | None = None
    patch: tuple[int, int, int] = (48, 48, 48)
    batch_size: int = 2
    time_budget: float | None = 3.0
    epochs: int = 30
    steps_per_epoch: int = 30
    lr: float = 1e-2
    augment: bool = False
    fg_fraction: float = 0.5
    seed: int = 0
    device: str | None = None
    workers: int = 2


QUICK_UNET = {"features": [16, 32, 64, 128], "strides": [1, 2, 2, 2]}
"""The quickstart's U-Net: four levels of 16..128 filters (1.4 M parameters), fast on a CPU."""


def write_manifest(path: Path, cases: Sequence[Case]) -> Path:
    """A CSV manifest (case_id, label, label_scheme) that ``evaluate`` reads as a reference folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "label", "label_scheme"])
        for c in cases:
            w.writerow([c.case_id, str(Path(c.label).resolve()), c.label_scheme or ""])
    return path


def is_synthetic(folder: Path) -> bool:
    """Whether ``folder`` was written by ``brats-seg synth`` (it leaves ``synth.json``)."""
    return (folder / "synth.json").is_file()


def quickstart_data(cfg: QuickstartConfig, out: Path, progress: bool) -> tuple[Path, Split]:
    """The dataset (synthesized into ``OUT/data`` without ``cfg.data``) and its seeded held-out split."""
    from ..data.synth import synthesize_dataset

    data = Path(cfg.data) if cfg.data else out / "data"
    if cfg.data is None:
        synthesize_dataset(data, cfg.synth_cases, "brats2021", seed=cfg.seed, spacing=cfg.synth_spacing,
                           workers=cfg.workers, progress=progress)
    plan = DataPlan(n_test=float(cfg.heldout), seed=cfg.seed, layout=cfg.layout, label_scheme=cfg.label_scheme)
    split = split_dataset(data, plan, min_train=2)
    write_manifest(out / "heldout.csv", split.test)
    return data, split


def train_model(cfg: QuickstartConfig, out: Path, train_cases: Sequence[Case], progress: bool) -> dict[str, Any]:
    """Preprocess the training cases into ``OUT/cache`` and train into ``OUT/run`` (resuming a killed run)."""
    from ..data.preprocessing.preprocess import preprocess_dataset
    from ..training.trainer import TrainConfig, train

    preprocess_dataset(train_cases, out / "cache", PreprocessConfig(), workers=cfg.workers, progress=progress)
    model_kwargs = cfg.model_kwargs if cfg.model_kwargs is not None else QUICK_UNET if cfg.model == "unet3d" else {}
    tcfg = TrainConfig(data=str(out / "cache"), out=str(out / "run"), model=cfg.model, preset=cfg.preset,
                       model_kwargs=dict(model_kwargs), epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
                       time_budget=cfg.time_budget,
                       patch=tuple(cfg.patch), batch_size=cfg.batch_size, lr=cfg.lr, augment=cfg.augment,
                       fg_fraction=cfg.fg_fraction, seed=cfg.seed, device=cfg.device,
                       folds=min(5, len(train_cases)), fold=0,
                       val_every=2 if cfg.time_budget is not None else max(1, cfg.epochs // 5),
                       workers=0, threads=None, progress=progress,
                       resume=(out / "run" / "checkpoints" / "last.pt").is_file())
    return train(tcfg)


def predict_heldout(cfg: QuickstartConfig, out: Path, heldout: Sequence[Case], progress: bool):
    """Predict the held-out cases from their raw files into ``OUT/predictions`` with the best checkpoint.
    Returns ``(checkpoint, device, batch result)``."""
    from ..inference.batch_prediction import OutputOptions, predict_cases
    from ..inference.predictor import Predictor

    ckpt = out / "run" / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        ckpt = out / "run" / "checkpoints" / "last.pt"
    predictor = Predictor([ckpt], device=cfg.device, overlap=DEFAULT_OVERLAP)
    batch = predict_cases(predictor, heldout, out / "predictions", OutputOptions(), progress=progress)
    return ckpt, predictor.device, batch


def run_quickstart(cfg: QuickstartConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run every step; returns the summary also written to ``OUT/quickstart.json``."""
    from ..evaluation.report import evaluate_folder

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    data, split = quickstart_data(cfg, out, progress)
    timer.lap("data")
    summary_train = train_model(cfg, out, split.train, progress)
    timer.lap("train")
    ckpt, device, batch = predict_heldout(cfg, out, split.test, progress)
    timer.lap("predict")
    result = evaluate_folder(out / "predictions", out / "heldout.csv", out / "evaluation", progress=progress)
    timer.lap("evaluate")
    overlays = draw_overlays(split.test, out / "predictions", out / "overlays")
    timer.lap("report")
    summary = {
        "data": str(data), "synthetic": is_synthetic(data),
        "train_cases": [c.case_id for c in split.train], "heldout_cases": [c.case_id for c in split.test],
        "checkpoint": str(ckpt), "train": {k: v for k, v in summary_train.items() if k != "history"},
        "prediction_failures": batch.failed, "seconds_per_case": batch.seconds,
        "n_scored": result.summary["n_scored"], "metrics": result.summary["metrics"],
        "mean_dice": result.summary.get("mean_dice"), "intervals": heldout_intervals(result.rows, seed=cfg.seed),
        "timings_s": {**{k: round(v, 1) for k, v in timer.stages.items()}, "total": round(timer.total(), 1)},
        "config": to_dict(cfg), "device": str(device),
    }
    (out / "quickstart.json").write_text(json.dumps(summary, indent=2, default=str))
    write_report(out, summary, overlays)
    return summary
