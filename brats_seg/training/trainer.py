"""Train a region-based (WT, TC, ET) segmentation model; one run folder per training.

::

    from brats_seg import TrainConfig, train
    cfg = TrainConfig(data="cache/", out="runs/a", model="unet3d", preset="tiny", epochs=20, patch=(64, 64, 64))
    summary = train(cfg)    # {"best": {...}, "best_epoch": ..., "run": ...}

Run folder (ARCHITECTURE.md §5): ``config.yaml``, ``splits.json``,
``checkpoints/last.pt`` (with the resume state), ``checkpoints/best.pt``,
``log.csv`` (one row per epoch), ``curves.png``. Every file is written
atomically and after each epoch, in the order best.pt, last.pt, log.csv,
curves.png; the log is rewritten from the history inside last.pt, so a run
killed at any moment resumes (``resume=True``) at the epoch after the last
complete checkpoint, with no gap or duplicate in its log.

:func:`fit` only coordinates plain functions (:func:`~brats_seg.training.loop.train_one_epoch`,
:func:`~brats_seg.training.loop.validate`, :func:`save_run`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from ..config import PreprocessConfig, dump_yaml, from_dict, to_dict
from ..conventions import MODALITIES
from ..data.transforms import AugmentConfig
from ..errors import CheckpointError, ConfigError
from . import ddp
from .history import plot_curves, write_log
from .loop import SCHEDULES, lr_factor, train_one_epoch, validate
from .losses import LOSSES, OUTPUT_ACTIVATION, build_loss
from .splits import make_splits, save_splits
from .state import rng_state, seed_everything, set_rng_state

OPTIMIZERS = ("adamw", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; saved as ``RUN/config.yaml`` and inside each checkpoint.

    ``data``: a raw dataset folder (preprocessed into ``cache`` or ``RUN/cache``) or a
    preprocessing cache. Defaults follow nnU-Net where it has one (poly schedule, 250
    steps per epoch, grad-norm clip 12, a third of patches on tumor, deep supervision, the
    augmentation probabilities of :class:`~brats_seg.data.transforms.AugmentConfig`).
    ``warmup`` is in epochs. ``encoder_lr_scale`` multiplies the learning rate of the
    encoder (``model.encoder_prefixes``) — e.g. 0.1 after ``init_from``.
    """

    data: str = ""
    out: str = ""
    model: str = "nnunet"
    preset: str = "base"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    epochs: int = 100
    steps_per_epoch: int = 250
    patch: tuple[int, int, int] = (128, 128, 128)
    batch_size: int = 2
    loss: str = "dice_bce"
    deep_supervision: bool = True
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.99
    schedule: str = "poly"
    warmup: float = 0.0
    grad_clip: float = 12.0
    amp: str = "auto"
    fold: int = 0
    folds: int = 5
    val_every: int = 1
    overlap: float = 0.5
    seed: int = 0
    device: str | None = None
    workers: int = 2
    fg_fraction: float = 0.34
    augment: bool = True
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    in_memory: bool | None = None
    init_from: str | None = None
    freeze_encoder_epochs: int = 0
    encoder_lr_scale: float = 1.0
    resume: bool = False
    progress: bool = True
    threads: int | None = None
    """torch intra-op CPU threads (``None``: torch's default). On a busy or small CPU, 1 per process
    avoids oversubscription with the loader workers (2-core machines: ~10x faster steps)."""


# --------------------------------------------------------------------------- checks before any work


def _is_cache(folder: Path) -> bool:
    return (folder / "dataset.json").is_file() and any(folder.glob("*_image.npy"))


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` (one line) for a setting that cannot work; touches no data."""
    from ..models.registry import model_info

    if not cfg.data:
        raise ConfigError("no data folder given")
    if not Path(cfg.data).is_dir():
        raise ConfigError(f"{cfg.data}: data folder not found")
    if not cfg.out:
        raise ConfigError("no run folder given (--out)")
    model_info(cfg.model)
    choices = {"loss": (cfg.loss, tuple(LOSSES)), "optimizer": (cfg.optimizer, OPTIMIZERS),
               "schedule": (cfg.schedule, SCHEDULES), "amp": (cfg.amp, AMP_MODES)}
    for name, (value, valid) in choices.items():
        if value not in valid:
            raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    if len(cfg.patch) != 3 or any(int(p) < 1 for p in cfg.patch):
        raise ConfigError(f"patch must be three positive sizes, got {list(cfg.patch)}")
    positive = {"epochs": cfg.epochs, "steps_per_epoch": cfg.steps_per_epoch, "batch_size": cfg.batch_size,
                "val_every": cfg.val_every, "lr": cfg.lr}
    for name, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if cfg.folds > 1 and not 0 <= cfg.fold < cfg.folds:
        raise ConfigError(f"fold must be in 0..{cfg.folds - 1}, got {cfg.fold}")
    if cfg.init_from and not Path(cfg.init_from).is_file():
        raise ConfigError(f"{cfg.init_from}: --init-from file not found")
    if not 0 <= cfg.fg_fraction <= 1:
        raise ConfigError(f"fg_fraction must be in [0, 1], got {cfg.fg_fraction}")


def data_channels(cfg: TrainConfig) -> tuple[str, ...]:
    """Input channel names: the cache's, or the canonical four for raw data."""
    for folder in (Path(cfg.data), Path(cfg.cache) if cfg.cache else None):
        if folder is not None and (folder / "dataset.json").is_file():
            channels = json.loads((folder / "dataset.json").read_text()).get("channels")
            if channels:
                return tuple(channels)
    return MODALITIES


def build_network(cfg: TrainConfig, in_channels: int) -> nn.Module:
    """The registered model, with the loss's output channels; refuses a patch the network cannot take."""
    from ..models.registry import build_model

    model = build_model(cfg.model, in_channels=in_channels, out_channels=LOSSES[cfg.loss].out_channels,
                        preset=cfg.preset, deep_supervision=cfg.deep_supervision, **cfg.model_kwargs)
    d = int(getattr(model, "size_divisor", 1))
    if any(int(p) % d for p in cfg.patch):
        fit = "x".join(str(max(d, round(int(p) / d) * d)) for p in cfg.patch)
        raise ConfigError(f"patch {'x'.join(map(str, cfg.patch))} does not fit model {cfg.model!r}"
                          f" (sides must be multiples of {d}); use e.g. --patch {fit}")
    fixed = getattr(model, "fixed_input_size", None)
    if fixed is not None and tuple(fixed) != tuple(cfg.patch):
        raise ConfigError(f"model {cfg.model!r} is built for inputs of exactly {'x'.join(map(str, fixed))};"
                          f" use --patch {' '.join(map(str, fixed))}")
    return model


# --------------------------------------------------------------------------- data


@dataclass
class RunData:
    cache: Path
    train_ids: list[str]
    val_ids: list[str]
    channels: tuple[str, ...]
    preprocessing: dict
    label_scheme: str


def prepare_data(cfg: TrainConfig, run: Path, info: ddp.DistInfo) -> RunData:
    """Resolve the cache (preprocessing raw data on rank 0 first), split the cases, write ``splits.json``."""
    from ..data.loaders import cached_case_ids, open_cached_case

    data = Path(cfg.data)
    cache = data if _is_cache(data) else Path(cfg.cache) if cfg.cache else run / "cache"
    if cache != data and info.is_main:
        from ..data.preprocess import preprocess_dataset

        report = preprocess_dataset(data, cache, cfg.preprocess, progress=cfg.progress)
        if getattr(report, "failed", None):
            failed = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
            print(f"preprocess: {len(report.failed)} case(s) skipped: {failed}")
    ddp.barrier(info)
    index = json.loads((cache / "dataset.json").read_text()) if (cache / "dataset.json").is_file() else {}
    ids = [c for c in cached_case_ids(cache) if (cache / f"{c}_label.npy").is_file()]
    if not ids:
        raise ConfigError(f"{cache}: no labelled cases in the cache")
    splits = make_splits(ids, cfg.folds, cfg.seed)
    split = splits[cfg.fold if cfg.folds > 1 else 0]
    if info.is_main:
        save_splits(run / "splits.json", splits, cfg.seed)
    schemes = [open_cached_case(cache, c).label_scheme for c in split["train"]]
    scheme = max(set(schemes), key=schemes.count) if schemes else "brats2021"
    return RunData(cache, split["train"], split["val"], tuple(index.get("channels") or data_channels(cfg)),
                   index.get("config") or to_dict(cfg.preprocess), scheme or "brats2021")


# --------------------------------------------------------------------------- optimizer and state


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


@dataclass
class Progress:
    """Where a run stands: epochs done, per-epoch history rows, best validation score."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: float = -1.0
    best_epoch: int = 0


def training_state(optimizer, scaler, progress: Progress) -> dict[str, Any]:
    return {"epoch": progress.epoch, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "scheduler": {"epoch": progress.epoch}, "rng": rng_state(), "history": progress.history,
            "best": progress.best, "best_epoch": progress.best_epoch}


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
    return Progress(int(state["epoch"]), list(state["history"]), float(state["best"]), int(state["best_epoch"]))


def _plain_provenance(ckpt: dict) -> dict:
    """Library versions as exact ``str`` (``torch.__version__`` is a ``TorchVersion``, which
    ``weights_only`` loading refuses)."""
    versions = ckpt.get("provenance", {}).get("versions")
    if versions:
        ckpt["provenance"]["versions"] = {k: str(v) for k, v in versions.items()}
    return ckpt


def save_run(run: Path, model: nn.Module, cfg: TrainConfig, data: RunData, progress: Progress, *,
             optimizer, scaler, improved: bool) -> None:
    """best.pt (if improved), last.pt (with the resume state), log.csv, curves.png — each atomic."""
    last = progress.history[-1] if progress.history else {}
    kwargs = dict(getattr(model, "build_kwargs", {}))
    common = dict(model_name=cfg.model, model_kwargs=kwargs, channels=data.channels, label_scheme=data.label_scheme,
                  preprocessing=data.preprocessing, patch_size=cfg.patch)
    provenance = {"epoch": progress.epoch, "metrics": last, "config": to_dict(cfg), "best": progress.best,
                  "best_epoch": progress.best_epoch, "output_activation": OUTPUT_ACTIVATION[cfg.loss],
                  "train_cases": data.train_ids, "val_cases": data.val_ids}
    if improved:
        save_checkpoint(_plain_provenance(make_checkpoint(model, provenance=provenance, **common)),
                        run / "checkpoints" / "best.pt")
    state = training_state(optimizer, scaler, progress)
    save_checkpoint(_plain_provenance(make_checkpoint(model, provenance=provenance, training=state, **common)),
                    run / "checkpoints" / "last.pt")
    write_log(run / "log.csv", progress.history)
    plot_curves(run / "curves.png", progress.history)


# --------------------------------------------------------------------------- the run


def ddp_backend() -> str:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_initialized() else "none"


def fit(cfg: TrainConfig, model: nn.Module, data: RunData, run: Path, info: ddp.DistInfo,
        device: torch.device) -> Progress:
    """Train ``model`` for ``cfg.epochs``, validating and saving after each epoch (resuming if asked)."""
    from tqdm.auto import tqdm

    from ..data.loaders import iter_validation_cases, make_train_loader

    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest kernels
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp == "fp16")
    last_pt = run / "checkpoints" / "last.pt"
    if info.is_main:
        for stale in run.glob("**/.*.tmp*"):  # temporary files of a write that was killed
            stale.unlink()
    progress = restore(last_pt, model, optimizer, scaler) if cfg.resume and last_pt.is_file() else Progress()
    if info.distributed and info.is_main:
        print(f"DDP: {info.world_size} processes ({ddp_backend()}), batch {cfg.batch_size} per process")
    if progress.epoch and info.is_main:
        write_log(run / "log.csv", progress.history)  # drop rows of an epoch whose checkpoint never landed
        print(f"resuming {run} after epoch {progress.epoch}")
    net = ddp.wrap(model, info, device)
    loader = make_train_loader(data.cache, data.train_ids, cfg.patch, cfg.batch_size, num_workers=cfg.workers,
                               fg_fraction=cfg.fg_fraction, augment=cfg.augmentation if cfg.augment else False,
                               seed=cfg.seed, steps_per_epoch=cfg.steps_per_epoch, rank=info.rank,
                               world_size=info.world_size, in_memory=cfg.in_memory)
    loss_fn = build_loss(cfg.loss)
    total = cfg.epochs * cfg.steps_per_epoch
    bar = tqdm(total=total, initial=progress.epoch * cfg.steps_per_epoch, unit="step", desc="train",
               disable=not (cfg.progress and info.is_main), dynamic_ncols=True)
    encoder, norms = encoder_parameters(model), encoder_norms(model)
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        loader.sampler.set_epoch(epoch)
        freeze = epoch <= cfg.freeze_encoder_epochs
        stats = train_one_epoch(
            net, loader, loss_fn, optimizer, device=device, step=(epoch - 1) * cfg.steps_per_epoch, total_steps=total,
            schedule=cfg.schedule, warmup_steps=int(cfg.warmup * cfg.steps_per_epoch), amp=cfg.amp, scaler=scaler,
            grad_clip=cfg.grad_clip, frozen=encoder if freeze else (), frozen_norms=norms if freeze else (),
            progress=lambda loss, e=epoch: (bar.update(1), bar.set_postfix(epoch=e, loss=f"{loss:.3f}")))
        row = {"epoch": epoch, "train_loss": round(ddp.all_reduce_mean(info, stats.loss), 5),
               "lr": optimizer.param_groups[-1]["lr"], "seconds": round(stats.seconds, 2),
               "data_wait": round(stats.data_wait, 3)}
        scores = None
        if data.val_ids and (epoch % cfg.val_every == 0 or epoch == cfg.epochs) and info.is_main:
            scores = validate(model, iter_validation_cases(data.cache, data.val_ids), window=cfg.patch,
                              activation=OUTPUT_ACTIVATION[cfg.loss], overlap=cfg.overlap, amp=cfg.amp)
            row.update({f"val_dice_{k}": round(v, 4) for k, v in scores.items()})
            bar.set_postfix(epoch=epoch, loss=f"{stats.loss:.3f}", dice=f"{scores['mean']:.3f}")
        scores = ddp.broadcast_object(info, scores)
        improved = (scores["mean"] > progress.best) if scores else not data.val_ids
        progress.history.append(row)
        progress.epoch = epoch
        if improved:
            progress.best = scores["mean"] if scores else progress.best
            progress.best_epoch = epoch
        if info.is_main:
            save_run(run, model, cfg, data, progress, optimizer=optimizer, scaler=scaler, improved=improved)
        ddp.barrier(info)
    bar.close()
    return progress


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training described by ``cfg`` (see :class:`TrainConfig`); returns a summary dict.

    Bad settings (unknown model, a patch the network cannot take, a missing data
    folder, an existing run without ``resume``) raise :class:`ConfigError` before any work.
    """
    check_config(cfg)
    run = Path(cfg.out)
    seed_everything(cfg.seed)  # the initial weights depend on the seed only
    model = build_network(cfg, len(data_channels(cfg)))
    if (cfg.freeze_encoder_epochs or cfg.encoder_lr_scale != 1.0) and not encoder_parameters(model):
        raise ConfigError(f"model {cfg.model!r} declares no encoder (encoder_prefixes); cannot freeze or scale it")
    if (run / "checkpoints" / "last.pt").is_file() and not cfg.resume:
        raise ConfigError(f"{run}: already holds a training run; pass --resume to continue it or choose another --out")
    info = ddp.setup(cfg.device)
    try:
        device = ddp.device_for(info, cfg.device)
        seed_everything(cfg.seed + info.rank)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if info.is_main:
            run.mkdir(parents=True, exist_ok=True)
            dump_yaml(cfg, run / "config.yaml")
        data = prepare_data(cfg, run, info)
        if data.channels != data_channels(cfg) or len(data.channels) != model.build_kwargs["in_channels"]:
            model = build_network(cfg, len(data.channels))
        if cfg.init_from and not (cfg.resume and (run / "checkpoints" / "last.pt").is_file()):
            from .transfer import load_pretrained

            report = load_pretrained(model, cfg.init_from, channels=data.channels,
                                     preprocessing=data.preprocessing)
            if info.is_main:
                print(report.format())
        t0 = time.perf_counter()
        progress = fit(cfg, model, data, run, info, device)
        return {"run": str(run), "epochs": progress.epoch, "best": progress.best, "best_epoch": progress.best_epoch,
                "history": progress.history, "seconds": time.perf_counter() - t0}
    finally:
        ddp.cleanup(info)


def load_run_config(run: str | Path) -> TrainConfig:
    """The ``config.yaml`` of an existing run folder."""
    from ..config import load_yaml

    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run}: no config.yaml; not a run folder")
    return load_yaml(TrainConfig, path)


def config_from_dict(data: dict) -> TrainConfig:
    return from_dict(TrainConfig, data)


__all__ = ["TrainConfig", "train", "fit", "check_config", "build_network", "load_run_config", "lr_factor"]
