"""The one device picker of the package: ``--device`` (or ``None``) to a :class:`torch.device`.

Training, search and prediction all call :func:`pick_device`, so ``--device`` means
the same everywhere. Sits at the bottom of the import graph with ``files``; imports
only ``errors``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .errors import BratsSegError, ConfigError


@dataclass(frozen=True)
class DistEnv:
    """This process's place under torchrun (``rank`` of ``world``; ``local_rank`` picks the GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The one reader of ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (as torchrun sets them); defaults: one
    process. Training (:mod:`brats_seg.training.ddp`) and prediction (:mod:`brats_seg.inference.batch_prediction`)
    both read it here."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", 1))
        rank = int(env.get("RANK", 0))
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise BratsSegError("RANK/WORLD_SIZE/LOCAL_RANK must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise BratsSegError(f"bad process group: RANK={rank}, WORLD_SIZE={world}")
    return DistEnv(rank, world, local)


def pick_device(name: str | torch.device | None, local_rank: int | None = None) -> torch.device:
    """``name`` as a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``); ``None``: CUDA when present, else CPU.

    ``local_rank``: this process's place on its machine under ``torchrun`` (None: one process);
    a bare ``cuda`` (given or chosen) then becomes ``cuda:LOCAL_RANK``, one GPU per process.
    An unknown name, or CUDA asked for on a machine without it, raises :class:`ConfigError`
    (one line) instead of failing later inside torch.
    """
    device = _device(name)
    if device.type == "cuda" and device.index is None and local_rank is not None:
        return _device(f"cuda:{int(local_rank)}")
    return device


def _device(name: str | torch.device | None) -> torch.device:
    if name is None or name == "":  # an empty --device means "not given"
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    return device


__all__ = ["pick_device"]
