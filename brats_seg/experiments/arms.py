"""One arm of a comparison: a :func:`~brats_seg.training.trainer.train` run under the budget every arm shares."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_path


@dataclass(frozen=True)
class Budget:
    """The training budget every arm of one experiment gets (identical, so arms are comparable).

    ``preset``: model size (``tiny``/``base``); ``epochs`` x ``steps_per_epoch`` optimizer steps
    on ``patch``-sized crops, ``batch_size`` each. ``overlap``: sliding-window overlap when
    predicting the held-out cases. ``threads``: torch CPU threads (None: torch's default; 1 on a
    small shared CPU avoids oversubscription, ~5x faster on 2 busy cores). ``augment``: MONAI
    augmentation of the crops (off in the smoke presets, where a handful of steps learns little anyway).
    """

    preset: str = "tiny"
    epochs: int = 1
    steps_per_epoch: int = 4
    patch: tuple[int, int, int] = (32, 32, 32)
    batch_size: int = 2
    lr: float = 1e-3
    workers: int = 0
    overlap: float = 0.25
    threads: int | None = None
    augment: bool = True

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


CPU_BUDGET = Budget(preset="tiny", epochs=4, steps_per_epoch=40, patch=(64, 64, 64), batch_size=2, threads=1,
                    augment=False)
"""The ``cpu`` presets' budget per arm: 160 steps of 2 x 64^3 crops, one thread, fp32, no augmentation
(about 5 minutes per small model on one shared core, plus about 7 s per held-out case to score)."""


@dataclass
class Arm:
    """One trained model: where its checkpoint is and what it cost."""

    name: str
    checkpoint: Path
    train_seconds: float
    parameters: int
    info: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """JSON form of a dataclass in ``train_options`` (e.g. an :class:`AugmentConfig`)."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def finished_arm(name: str, run: Path) -> Arm | None:
    """The arm a previous run left finished in ``run`` (``best.pt`` and ``arm.json``), or None."""
    best, done = run / "checkpoints" / "best.pt", run / "arm.json"
    if not (best.is_file() and done.is_file()):
        return None
    info = json.loads(done.read_text())
    return Arm(name, best, float(info["train_seconds"]), int(info["parameters"]), info)


def train_arm(name: str, cache: Path, run: Path, budget: Budget, *, model: str, seed: int = 0,
              init_from: str | Path | None = None, freeze_encoder_epochs: int = 0, device: str | None = None,
              progress: bool = False, model_kwargs: Mapping[str, Any] | None = None,
              train_options: Mapping[str, Any] | None = None) -> Arm:
    """Train ``model`` on every case of ``cache`` under ``budget`` (no validation split: the held-out
    cases are scored afterwards). ``train_options``: further :class:`TrainConfig` fields (e.g.
    ``modality_dropout``). Reuses a finished run found in ``run`` (same folder, same arm)."""
    from ..models.registry import build_model, count_parameters
    from ..training.trainer import TrainConfig, train

    done = finished_arm(name, run)
    if done is not None:
        return done
    kwargs = dict(model_kwargs or {})
    cfg = TrainConfig(data=str(cache), out=str(run), model=model, preset=budget.preset, model_kwargs=kwargs,
                      epochs=budget.epochs, steps_per_epoch=budget.steps_per_epoch, patch=tuple(budget.patch),
                      batch_size=budget.batch_size, lr=budget.lr, augment=budget.augment, folds=1, seed=seed,
                      device=device, workers=budget.workers, init_from=str(init_from) if init_from else None,
                      freeze_encoder_epochs=freeze_encoder_epochs,
                      resume=(run / "checkpoints" / "last.pt").is_file(), progress=progress, threads=budget.threads,
                      **dict(train_options or {}))
    t0 = time.perf_counter()
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):  # e.g. the init-from report
        summary = train(cfg)
    seconds = time.perf_counter() - t0
    params = count_parameters(build_model(model, preset=budget.preset, **kwargs))  # no deep-supervision heads
    history = summary.get("history") or [{}]
    info = {"name": name, "model": model, "seed": seed, "train_seconds": round(seconds, 3), "parameters": params,
            "final_train_loss": history[-1].get("train_loss"), "init_from": str(init_from) if init_from else None,
            "freeze_encoder_epochs": freeze_encoder_epochs, "train_options": dict(train_options or {})}
    with atomic_path(run / "arm.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1, default=_plain))
    return Arm(name, run / "checkpoints" / "best.pt", seconds, params, info)
