"""Train a region-based (WT, TC, ET) segmentation model; one run folder per training.

::

    from brats_seg import TrainConfig, train
    cfg = TrainConfig(data="cache/", out="runs/a", model="unet3d", preset="tiny", epochs=20, patch=(64, 64, 64))
    summary = train(cfg)    # {"best": ..., "best_epoch": ..., "run": ..., "history": [...], ...}
    cfg = TrainConfig(data="cache/", out="runs/b", model="unet3d", preset="tiny", time_budget=25)  # 25 minutes

Run folder (ARCHITECTURE.md §5): ``config.yaml``, ``splits.json``, ``checkpoints/last.pt``
(with the resume state), ``checkpoints/best.pt``, ``log.csv`` (one row per epoch),
``curves.png``; see :mod:`~brats_seg.training.run_folder`. A run killed at any moment
resumes (``resume=True``) at the epoch after the last complete checkpoint.

The pieces: :mod:`~brats_seg.training.train_config` (settings and checks),
:mod:`~brats_seg.training.run_data` (cache, split, what the checkpoint records about the data),
:mod:`~brats_seg.training.optim` (optimizer and schedule), :mod:`~brats_seg.training.schedule`
(epochs or a time budget), :mod:`~brats_seg.training.loop` (one epoch, validation),
:mod:`~brats_seg.training.run_folder` (checkpoints, log). :func:`fit` only coordinates them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import dump_yaml
from ..data.subsets import ModalityDropout
from ..errors import ConfigError
from ..importers import IMPORTED_NETWORKS
from . import ddp
from .follow import adopt_source, follow_source, imported_network, init_from_source
from .history import write_log
from .loop import EpochSettings, EpochStats, train_one_epoch, validate
from .losses import LOSSES, OUTPUT_ACTIVATION, build_loss
from .optim import build_optimizer, build_schedule, encoder_norms, encoder_parameters
from .run_data import RunData, data_channels, prepare_data
from .run_folder import Progress, last_checkpoint, remove_stale_temporaries, restore, save_run
from .schedule import EpochSchedule, TimeBudget
from .state import seed_everything
from .train_config import TrainConfig, check_config


def out_channels(cfg: TrainConfig, groups: int | None = None, labels: bool = False) -> int:
    """Network outputs: one per output group (sigmoid regions, or softmax ``labels``; ``groups`` known once the
    data is, else ``len(cfg.outputs)`` or 3), or the softmax loss's 4 WT/TC/ET classes."""
    if labels and groups:
        return groups
    if cfg.loss != "dice_bce":
        return LOSSES[cfg.loss].out_channels
    return groups or (len(cfg.outputs) if cfg.outputs else LOSSES[cfg.loss].out_channels)


def build_network(cfg: TrainConfig, in_channels: int, groups: int | None = None, labels: bool = False) -> nn.Module:
    """The registered model, with :func:`out_channels` outputs and ``cfg.init`` weights (or an imported source's
    network, :func:`~.follow.imported_network`); refuses a patch the network cannot take."""
    from ..models.base import init_weights
    from ..models.registry import build_model

    if cfg.model in IMPORTED_NETWORKS:  # fine-tuning a model trained elsewhere: its own network, as built there
        model = imported_network(cfg)
    else:
        model = build_model(cfg.model, in_channels=in_channels, out_channels=out_channels(cfg, groups, labels),
                            preset=cfg.preset, deep_supervision=cfg.deep_supervision, **cfg.model_kwargs)
        init_weights(model, cfg.init)
    d = int(getattr(model, "size_divisor", 1))
    if any(int(p) % d for p in cfg.patch):
        fit = "x".join(str(max(d, round(int(p) / d) * d)) for p in cfg.patch)
        raise ConfigError(f"patch {'x'.join(map(str, cfg.patch))} does not fit model {cfg.model!r}"
                          f" (sides must be multiples of {d}); use e.g. --patch {fit}")
    fixed = getattr(model, "fixed_input_size", None)
    if fixed is not None and tuple(fixed) != tuple(cfg.patch):
        raise ConfigError(f"model {cfg.model!r} is built for inputs of exactly {'x'.join(map(str, fixed))};"
                          f" use --patch {' '.join(map(str, fixed))}")
    if (cfg.freeze_encoder_epochs or cfg.encoder_lr_scale != 1.0) and not encoder_parameters(model):
        raise ConfigError(f"model {cfg.model!r} declares no encoder (encoder_prefixes); cannot freeze or scale it")
    return model


# --------------------------------------------------------------------------- the steps of fit


@dataclass
class Session:
    """What one call of :func:`fit` works with (this process's share of the run)."""

    cfg: TrainConfig
    data: RunData
    run: Path
    info: ddp.DistInfo
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    progress: Progress
    schedule: EpochSchedule | TimeBudget


def open_session(cfg: TrainConfig, model: nn.Module, data: RunData, run: Path, info: ddp.DistInfo,
                 device: torch.device) -> Session:
    """Model on ``device``, optimizer, scaler and schedule; restored from ``last.pt`` when resuming."""
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest kernels
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp == "fp16")
    if info.is_main:
        remove_stale_temporaries(run)
    resuming = cfg.resume and last_checkpoint(run).is_file()
    progress = restore(last_checkpoint(run), model, optimizer, scaler) if resuming else Progress()
    if info.distributed and info.is_main:
        print(f"DDP: {info.world_size} processes ({ddp.backend()}), batch {cfg.batch_size} per process")
    if progress.epoch and info.is_main:
        write_log(run / "log.csv", progress.history)  # drop rows of an epoch whose checkpoint never landed
        print(f"resuming {run} after epoch {progress.epoch}")
    schedule = build_schedule(cfg, info, progress.schedule)
    return Session(cfg, data, run, info, device, model, optimizer, scaler, progress, schedule)


def _progress_bar(s: Session):
    """Steps out of ``epochs x steps_per_epoch``, or seconds out of the time budget."""
    from tqdm.auto import tqdm

    show = s.cfg.progress and s.info.is_main
    if isinstance(s.schedule, TimeBudget):
        return tqdm(total=round(s.schedule.seconds), initial=round(s.schedule.elapsed()), unit="s",
                    desc="train (time budget)", disable=not show, dynamic_ncols=True)
    spe = s.cfg.steps_per_epoch
    return tqdm(total=s.cfg.epochs * spe, initial=s.progress.epoch * spe, unit="step", desc="train",
                disable=not show, dynamic_ncols=True)


def train_epoch(s: Session, net: nn.Module, loader, loss_fn: nn.Module, epoch: int, bar,
                on_device=None) -> EpochStats:
    """One epoch of :func:`~brats_seg.training.loop.train_one_epoch` on the session's schedule;
    ``on_device``: a :class:`~brats_seg.data.augmentation.gpu_augment.DeviceAugmentation` applied to whole batches."""
    from ..data.augmentation.gpu_augment import augment_batches

    cfg = s.cfg
    loader.sampler.set_epoch(epoch)
    batches = loader if on_device is None else augment_batches(loader, on_device, s.device, seed=cfg.seed,
                                                               epoch=epoch)
    freeze = epoch <= cfg.freeze_encoder_epochs
    timed = isinstance(s.schedule, TimeBudget)

    def show(loss: float) -> None:
        bar.update(round(s.schedule.elapsed() - bar.n) if timed else 1)
        bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")

    settings = EpochSettings(s.device, lr_at=s.schedule.lr_at, amp=cfg.amp, grad_clip=cfg.grad_clip,
                             frozen=encoder_parameters(s.model) if freeze else (),
                             frozen_norms=encoder_norms(s.model) if freeze else ())
    return train_one_epoch(net, batches, loss_fn, s.optimizer, settings, step=(epoch - 1) * cfg.steps_per_epoch,
                           scaler=s.scaler, stop=s.schedule.stop_early, progress=show)


def validate_if_due(s: Session, epoch: int, last: bool) -> dict[str, float] | None:
    """Rank 0 validates every ``val_every`` epochs and after the last; every rank gets the scores."""
    from ..data.loaders import iter_validation_cases

    scores = None
    if s.data.val_ids and (epoch % s.cfg.val_every == 0 or last) and s.info.is_main:
        t0 = time.perf_counter()
        outputs = s.data.outputs
        labels = outputs.kind == "labels"
        scores = validate(s.model, iter_validation_cases(s.data.cache, s.data.val_ids, outputs), window=s.cfg.patch,
                          activation="softmax_labels" if labels else OUTPUT_ACTIVATION[s.cfg.loss],
                          overlap=s.cfg.overlap, amp=s.cfg.amp,
                          groups=[f"label{v}" for v in outputs.values] if labels else outputs.groups, argmax=labels)
        s.schedule.measure("validate", time.perf_counter() - t0)
    return ddp.broadcast_object(s.info, scores)


def record_epoch(s: Session, epoch: int, stats: EpochStats, scores: dict[str, float] | None) -> bool:
    """Append the epoch's log row and update the best score; True when this epoch is the new best."""
    row = {"epoch": epoch, "train_loss": round(ddp.all_reduce_mean(s.info, stats.loss), 5),
           "lr": s.optimizer.param_groups[-1]["lr"], "seconds": round(stats.seconds, 2),
           "data_wait": round(stats.data_wait, 3), "steps": stats.steps, "elapsed": round(s.schedule.elapsed(), 1)}
    if scores:
        row.update({f"val_dice_{k}": round(v, 4) for k, v in scores.items()})
    p = s.progress
    improved = (scores["mean"] > p.best) if scores else not s.data.val_ids
    p.history.append(row)
    p.epoch = epoch
    if improved:
        p.best = scores["mean"] if scores else p.best
        p.best_epoch = epoch
    return improved


def save_epoch(s: Session, improved: bool) -> None:
    """Rank 0 writes the run folder (timed: a time budget keeps room for the last write)."""
    if s.info.is_main:
        t0 = time.perf_counter()
        s.progress.schedule = s.schedule.state()
        save_run(s.run, s.model, s.cfg, s.data, s.progress, optimizer=s.optimizer, scaler=s.scaler,
                 improved=improved)
        s.schedule.measure("save", time.perf_counter() - t0)
    ddp.barrier(s.info)


def check_batch_norm(model: nn.Module, cfg: TrainConfig) -> None:
    """A :class:`ConfigError` when batch norm would see one value per channel: a batch of one patch
    whose deepest features ``patch // model.size_divisor`` are a single voxel (training cannot run).
    A run whose encoder stays frozen throughout (its norms in eval mode) is let through."""
    if cfg.time_budget is None and cfg.freeze_encoder_epochs >= cfg.epochs:
        return
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    divisor = getattr(model, "size_divisor", 1)
    deepest = int(np.prod([max(p // divisor, 1) for p in cfg.patch]))
    if cfg.batch_size * deepest < 2:
        raise ConfigError(f"model {cfg.model!r} uses batch norm and its deepest features are 1 voxel at patch"
                          f" {'x'.join(map(str, cfg.patch))}: batch norm cannot train on one value per channel;"
                          f" use --batch-size 2 or more, or a patch of at least {2 * divisor}")


def fit(cfg: TrainConfig, model: nn.Module, data: RunData, run: Path, info: ddp.DistInfo,
        device: torch.device) -> Progress:
    """Train ``model`` for ``cfg.epochs`` (or ``cfg.time_budget`` minutes), validating and saving after each
    epoch (resuming if asked)."""
    from ..data.augmentation.gpu_augment import DeviceAugmentation
    from ..data.loaders import make_train_loader

    s = open_session(cfg, model, data, run, info, device)
    net = ddp.wrap(model, info, device)
    loader = make_train_loader(data.cache, data.train_ids, cfg.patch, cfg.batch_size, num_workers=cfg.workers,
                               fg_fraction=cfg.fg_fraction, augment=cfg.augmentation if cfg.augment else False,
                               seed=cfg.seed, steps_per_epoch=cfg.steps_per_epoch, rank=info.rank,
                               world_size=info.world_size, in_memory=cfg.in_memory,
                               dropout=ModalityDropout.from_config(data.channels, cfg.modality_dropout, cfg.subsets),
                               outputs=data.outputs)
    loss_fn = build_loss(cfg.loss, batch_dice=cfg.batch_dice)
    on_device = DeviceAugmentation(cfg.augmentation) if cfg.augment and cfg.augment_on_device else None
    bar = _progress_bar(s)
    while not s.schedule.finished(s.progress.epoch):
        epoch = s.progress.epoch + 1
        stats = train_epoch(s, net, loader, loss_fn, epoch, bar, on_device)
        scores = validate_if_due(s, epoch, last=s.schedule.finished(epoch))
        if scores:
            bar.set_postfix(epoch=epoch, loss=f"{stats.loss:.3f}", dice=f"{scores['mean']:.3f}")
        save_epoch(s, record_epoch(s, epoch, stats, scores))
    bar.close()
    return s.progress


# --------------------------------------------------------------------------- the run


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training described by ``cfg`` (see :class:`TrainConfig`); returns a summary dict
    (``run``, ``epochs``, ``best``, ``best_epoch``, ``history``, ``seconds`` of this session,
    ``elapsed`` training time over all sessions, ``skipped`` raw cases that failed a check).

    Bad settings (unknown model, a patch the network cannot take, a missing data
    folder, an existing run without ``resume``) raise :class:`ConfigError` before any work.
    """
    check_config(cfg)
    cfg = follow_source(cfg)  # --recipe finetune: the source's network, preprocessing, patch, loss
    run = Path(cfg.out)
    seed_everything(cfg.seed)  # the initial weights depend on the seed only
    channels = data_channels(cfg)
    ModalityDropout.from_config(channels, cfg.modality_dropout, cfg.subsets)  # subsets of these channels
    model = build_network(cfg, len(channels))
    check_batch_norm(model, cfg)
    if last_checkpoint(run).is_file() and not cfg.resume:
        raise ConfigError(f"{run}: already holds a training run; pass --resume to continue it or choose another --out")
    info = ddp.setup(cfg.device)
    try:
        device = ddp.device_for(info, cfg.device)
        seed_everything(cfg.seed + info.rank)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        data = prepare_data(cfg, run, info)  # a raw case that fails a check is skipped; none left: CaseError
        adopt_source(cfg, data)  # an imported source: its outputs and what the checkpoints carry, checked
        labels = data.outputs.kind == "labels"
        if out_channels(cfg, data.outputs.channels, labels) != out_channels(cfg):  # known from the data: rebuild
            seed_everything(cfg.seed)
            model = build_network(cfg, len(channels), data.outputs.channels, labels)
            seed_everything(cfg.seed + info.rank)
        if info.is_main:  # written once the data is known good: a refused run leaves no config behind
            dump_yaml(cfg, run / "config.yaml")
        if data.channels != channels:
            raise ConfigError(f"{data.cache}: holds channels {', '.join(data.channels)}, expected"
                              f" {', '.join(channels)}")
        if cfg.init_from and not (cfg.resume and last_checkpoint(run).is_file()):
            report = init_from_source(model, cfg, data.channels, data.preprocessing)
            if info.is_main:
                print(report)
        t0 = time.perf_counter()
        progress = fit(cfg, model, data, run, info, device)
        return {"run": str(run), "epochs": progress.epoch, "best": progress.best, "best_epoch": progress.best_epoch,
                "history": progress.history, "seconds": time.perf_counter() - t0,
                "elapsed": float(progress.schedule.get("elapsed", 0.0)), "skipped": data.skipped}
    finally:
        ddp.cleanup(info)


__all__ = ["TrainConfig", "train", "fit", "build_network"]
