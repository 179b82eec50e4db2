"""The run folder on disk: checkpoints with the resume state, ``log.csv`` and ``curves.png``.

Written after each epoch, each file atomically, in the order ``best.pt``, ``last.pt``,
``log.csv``, ``curves.png``; the log is rewritten from the history inside ``last.pt``,
so a run killed at any moment resumes after the last complete checkpoint with no gap or
duplicate in its log (ARCHITECTURE.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from ..config import to_dict
from ..data.subsets import trained_subsets
from ..errors import CheckpointError
from .history import plot_curves, write_log
from .losses import OUTPUT_ACTIVATION
from .run_data import RunData
from .state import rng_state, set_rng_state
from .train_config import TrainConfig


@dataclass
class Progress:
    """Where a run stands: epochs done, per-epoch history rows, best validation score, and the
    schedule's state (elapsed training time; a time budget's measured costs)."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: float = -1.0
    best_epoch: int = 0
    schedule: dict[str, Any] = field(default_factory=dict)


def last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "last.pt"


def remove_stale_temporaries(run: Path) -> None:
    """Delete the temporary files of a write that was killed (``.NAME.tmpPID``)."""
    for stale in run.glob("**/.*.tmp*"):
        stale.unlink()


def training_state(optimizer, scaler, progress: Progress) -> dict[str, Any]:
    """The resume state stored in ``last.pt`` (plain values and tensors only)."""
    return {"epoch": progress.epoch, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "scheduler": {"epoch": progress.epoch, **progress.schedule}, "rng": rng_state(),
            "history": progress.history, "best": progress.best, "best_epoch": progress.best_epoch}


def restore(path: Path, model: nn.Module, optimizer, scaler) -> Progress:
    """Load ``last.pt`` (``weights_only``) into the model, optimizer, scaler and RNGs."""
    ckpt = load_checkpoint(path)
    state = ckpt.get("training")
    if state is None:
        raise CheckpointError(f"{path}: holds no training state to resume from")
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    schedule = {k: v for k, v in state.get("scheduler", {}).items() if k != "epoch"}
    return Progress(int(state["epoch"]), list(state["history"]), float(state["best"]), int(state["best_epoch"]),
                    schedule)


def save_run(run: Path, model: nn.Module, cfg: TrainConfig, data: RunData, progress: Progress, *,
             optimizer, scaler, improved: bool) -> None:
    """best.pt (if improved), last.pt (with the resume state), log.csv, curves.png — each atomic."""
    last = progress.history[-1] if progress.history else {}
    common = dict(model_name=cfg.model, model_kwargs=dict(getattr(model, "build_kwargs", {})),
                  channels=data.channels, label_scheme=data.label_scheme, preprocessing=data.preprocessing,
                  patch_size=cfg.patch, spacing=data.spacing, outputs=data.outputs,
                  subsets=trained_subsets(data.channels, cfg.modality_dropout, cfg.subsets),
                  intensity_range=data.intensity_range)
    provenance = {"epoch": progress.epoch, "metrics": last, "config": to_dict(cfg), "best": progress.best,
                  "best_epoch": progress.best_epoch, "output_activation": OUTPUT_ACTIVATION[cfg.loss],
                  "train_cases": data.train_ids, "val_cases": data.val_ids}
    provenance.update(data.passed_on.get("provenance", {}))  # an imported source's record, and fine_tuned

    def checkpoint(**training) -> dict:
        ckpt = make_checkpoint(model, provenance=provenance, **training, **common)
        ckpt.update({k: v for k, v in data.passed_on.items() if k != "provenance"})  # e.g. its window weights
        return ckpt

    if improved:
        save_checkpoint(checkpoint(), run / "checkpoints" / "best.pt")
    save_checkpoint(checkpoint(training=training_state(optimizer, scaler, progress)), last_checkpoint(run))
    write_log(run / "log.csv", progress.history)
    plot_curves(run / "curves.png", progress.history)


__all__ = ["Progress", "last_checkpoint", "remove_stale_temporaries", "training_state", "restore", "save_run"]
