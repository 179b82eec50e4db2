"""Distributed data parallel (DDP) under ``torchrun``: the same ``brats-seg train`` command on N processes.

``torchrun --nproc_per_node N`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`setup` joins the process group (NCCL on GPUs, gloo on CPU). Rank 0 alone
preprocesses, validates, logs and writes checkpoints; the others wait at barriers
and receive rank 0's decisions by broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..devices import dist_env, pick_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistInfo:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); else single process."""
    env = dist_env()
    if env.world <= 1:
        return DistInfo()
    info = DistInfo(env.rank, env.world, env.local_rank)
    use_cuda = pick_device(device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    return info


def device_for(info: DistInfo, device: str | None) -> torch.device:
    """:func:`~brats_seg.devices.pick_device`, with a bare ``cuda`` made ``cuda:LOCAL_RANK`` under DDP."""
    return pick_device(device, info.local_rank if info.distributed else None)


def backend() -> str:
    """The process group's backend (``gloo``, ``nccl``), or ``none`` outside DDP."""
    return dist.get_backend() if dist.is_initialized() else "none"


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(info: DistInfo, obj):
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _float_tensor(values: list[float]) -> torch.Tensor:
    """float64 tensor on the device the backend talks through (NCCL: the current GPU; gloo: CPU)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    return torch.tensor(values, dtype=torch.float64, device=device)


def broadcast_floats(info: DistInfo, values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank (a float64 tensor broadcast: cheap enough for every step)."""
    if not info.distributed:
        return values
    t = _float_tensor(values)
    dist.broadcast(t, src=0)
    return t.tolist()


def all_reduce_mean(info: DistInfo, value: float) -> float:
    if not info.distributed:
        return value
    t = _float_tensor([float(value)])
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
