"""Learning-rate schedules and how long a run lasts: a number of epochs, or a time budget.

Two schedules share one interface (:class:`EpochSchedule`, :class:`TimeBudget`): the
learning-rate factor of each optimizer step, whether to stop early, whether the run is
finished, the elapsed training time (kept across resumes) and the resume state.

**Epochs** (the default): the factor runs on the global step out of
``epochs x steps_per_epoch`` (:func:`lr_factor`, exact and reproducible).

**A time budget** (``--time-budget MINUTES``): the factor runs on elapsed training time
as a fraction of the budget (:func:`lr_factor_at`; the warm-up is a share of the budget
too), so poly/cosine reach 0 when the budget is spent, however fast the machine.
Elapsed time counts everything the run does after the data are prepared (training
steps, loading, validation, checkpoint writes), over every resumed session. Training
stops once the time left is no more than the *reserve*: the largest cost measured so
far of one validation plus one checkpoint write, so that the final validation and
checkpoint land inside the budget. Until the first epoch's validation and checkpoint
have been measured the reserve is 0, so a budget shorter than one epoch can overrun by
that epoch's validation and checkpoint. The epoch that reaches the budget ends early
(fewer than ``steps_per_epoch`` steps) and is the last one. Under DDP every rank follows
rank 0's clock (broadcast each step), so all ranks use the same learning rate and stop
at the same step. A budget run is not bit-reproducible (its steps depend on the speed
of the machine); an epoch run is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

SCHEDULES = ("poly", "cosine")


def _decay(t: float, schedule: str, exponent: float) -> float:
    """Decay from 1 at ``t=0`` to 0 at ``t=1``: ``poly`` ((1 - t)^0.9, nnU-Net) or ``cosine``."""
    if schedule == "poly":
        return (1.0 - t) ** exponent
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    raise ValueError(f"unknown schedule {schedule!r}")


def lr_factor(step: int, total: int, *, schedule: str = "poly", warmup: int = 0, exponent: float = 0.9) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` of ``total``.

    Linear warm-up over ``warmup`` steps, then ``poly`` ((1 - t)^0.9, nnU-Net) or
    ``cosine`` (Loshchilov & Hutter 2017, no restarts) decay to 0 at ``total``.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return _decay(min(max(step - warmup, 0) / max(total - warmup, 1), 1.0), schedule, exponent)


def lr_factor_at(fraction: float, *, schedule: str = "poly", warmup: float = 0.0, exponent: float = 0.9) -> float:
    """:func:`lr_factor` on a continuous clock: ``fraction`` of the run done (0..1), ``warmup`` a share of it."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup > 0 and fraction < warmup:
        return fraction / warmup
    return _decay((fraction - warmup) / max(1.0 - warmup, 1e-12), schedule, exponent)


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every param group's lr to its ``base_lr`` (stored in the group) times ``factor``."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


class _Clock:
    """Training time of the run, continued from ``elapsed`` seconds of earlier sessions."""

    def __init__(self, elapsed: float = 0.0):
        self._origin = time.perf_counter() - float(elapsed)

    def elapsed(self) -> float:
        return time.perf_counter() - self._origin


class EpochSchedule(_Clock):
    """``epochs`` epochs of ``steps_per_epoch`` steps; the factor runs on the step (:func:`lr_factor`)."""

    stop_early = None  # an epoch always runs all its steps

    def __init__(self, epochs: int, steps_per_epoch: int, *, schedule: str = "poly", warmup_epochs: float = 0.0,
                 state: dict[str, Any] | None = None):
        super().__init__((state or {}).get("elapsed", 0.0))
        self.epochs, self.total = epochs, epochs * steps_per_epoch
        self.schedule, self.warmup = schedule, int(warmup_epochs * steps_per_epoch)

    def lr_at(self, step: int) -> float:
        return lr_factor(step, self.total, schedule=self.schedule, warmup=self.warmup)

    def finished(self, epochs_done: int) -> bool:
        return epochs_done >= self.epochs

    def measure(self, kind: str, seconds: float) -> None:
        """Costs matter only to a time budget."""

    def state(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed()}


class TimeBudget(_Clock):
    """Train for ``seconds`` of elapsed time; the factor runs on the fraction spent (see the module doc).

    ``sync`` maps rank 0's ``[fraction, spent]`` to every rank (identity outside DDP).
    ``state``: what :meth:`state` returned in the checkpoint being resumed.
    """

    def __init__(self, seconds: float, *, schedule: str = "poly", warmup: float = 0.0,
                 state: dict[str, Any] | None = None, sync: Callable[[list[float]], list[float]] = lambda v: v):
        state = state or {}
        super().__init__(state.get("elapsed", 0.0))
        self.seconds, self.schedule, self.warmup, self._sync = float(seconds), schedule, float(warmup), sync
        self.costs: dict[str, float] = dict(state.get("costs", {}))
        self._spent = False
        self._tick()  # a resumed run whose budget is spent is finished at once

    @property
    def reserve(self) -> float:
        """Seconds kept for the final validation and checkpoint write (largest costs measured so far)."""
        return sum(self.costs.values())

    def _tick(self) -> tuple[float, bool]:
        now = self.elapsed()
        fraction, spent = self._sync([min(now / max(self.seconds - self.reserve, 1e-9), 1.0),
                                      float(now + self.reserve >= self.seconds)])
        self._spent = bool(spent)
        return fraction, self._spent

    def lr_at(self, step: int) -> float:
        return lr_factor_at(self._tick()[0], schedule=self.schedule, warmup=self.warmup)

    def stop_early(self) -> bool:
        """After a step: is the time left no more than the reserve?"""
        return self._tick()[1]

    def finished(self, epochs_done: int) -> bool:
        """Whether a step found the budget spent (the epoch it ended is the last, and is validated)."""
        return self._spent

    def measure(self, kind: str, seconds: float) -> None:
        """Record the cost of a ``validate`` or ``save`` (the reserve keeps the largest of each)."""
        self.costs[kind] = max(self.costs.get(kind, 0.0), float(seconds))

    def state(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed(), "budget": self.seconds, "costs": dict(self.costs)}


__all__ = ["SCHEDULES", "lr_factor", "lr_factor_at", "set_lr", "EpochSchedule", "TimeBudget"]
