"""The optimizer of a run, with the encoder's parameters in their own group (freezing, a smaller lr),
and the run's schedule (:class:`~brats_seg.training.schedule.EpochSchedule` or a
:class:`~brats_seg.training.schedule.TimeBudget`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import ddp
from .schedule import EpochSchedule, TimeBudget
from .train_config import TrainConfig


def encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    prefixes = tuple(getattr(model, "encoder_prefixes", ()) or ())
    return [p for n, p in model.named_parameters() if prefixes and n.startswith(prefixes)]


def encoder_norms(model: nn.Module) -> list[nn.Module]:
    """Batch-norm modules of the encoder (kept in eval mode while the encoder is frozen)."""
    prefixes = tuple(getattr(model, "encoder_prefixes", ()) or ())
    return [m for n, m in model.named_modules() if prefixes and f"{n}.".startswith(prefixes)
            and isinstance(m, nn.modules.batchnorm._BatchNorm)]


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov, nnU-Net) with two param groups: encoder (lr x ``encoder_lr_scale``), the rest."""
    enc = {id(p) for p in encoder_parameters(model)}
    groups = [{"params": [p for p in model.parameters() if id(p) in enc], "base_lr": cfg.lr * cfg.encoder_lr_scale,
               "name": "encoder"},
              {"params": [p for p in model.parameters() if id(p) not in enc], "base_lr": cfg.lr, "name": "rest"}]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["lr"] = g["base_lr"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_schedule(cfg: TrainConfig, info: ddp.DistInfo,
                   state: dict[str, Any] | None = None) -> EpochSchedule | TimeBudget:
    """The run's length and learning-rate schedule, continued from a resumed checkpoint's ``state``."""
    if cfg.time_budget is None:
        return EpochSchedule(cfg.epochs, cfg.steps_per_epoch, schedule=cfg.schedule, warmup_epochs=cfg.warmup,
                             state=state)
    return TimeBudget(cfg.time_budget * 60.0, schedule=cfg.schedule, warmup=cfg.warmup, state=state,
                      sync=lambda values: ddp.broadcast_floats(info, values))


__all__ = ["build_optimizer", "build_schedule", "encoder_parameters", "encoder_norms"]
