"""The one device picker of the package: ``--device`` (or ``None``) to a :class:`torch.device`.

Training, search and prediction all call :func:`pick_device`, so ``--device`` means
the same everywhere. Sits at the bottom of the import graph with ``files``; imports
only ``errors``.
"""

from __future__ import annotations

import torch

from .errors import ConfigError


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
