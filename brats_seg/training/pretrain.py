"""Self-supervised pretraining on unlabeled scans, Models Genesis-style (:mod:`.genesis` says exactly how
it follows and where it differs from Zhou et al. 2019).

``pretrain`` reads a raw dataset folder (any layout; labels are neither needed nor read) or a
preprocessing cache, trains the registered network with ``out_channels = in_channels`` to restore
distorted patches (MSE), and writes ``RUN/checkpoints/last.pt``: a regular checkpoint that records
the cache's channels and preprocessing, whose encoder and decoder (all but the output head) feed
``brats-seg train --init-from RUN/checkpoints/last.pt`` (same model and preset). Fine-tuning refuses
weights whose inputs were preprocessed differently (:func:`brats_seg.training.weight_transfer.check_inputs`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoint import make_checkpoint, save_checkpoint
from ..config import PreprocessConfig, dump_yaml, to_dict
from ..errors import ConfigError
from . import ddp
from .genesis import Distortions, RestorationPatches
from .history import write_log
from .loop import EpochSettings, train_one_epoch
from .losses import DeepSupervisionLoss
from .state import seed_everything

TASK = "models_genesis_restoration"
"""``provenance.task`` of a pretraining checkpoint."""


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pretraining run (saved as ``RUN/config.yaml``). ``cache``: where raw data is preprocessed
    to (default ``RUN/cache``), with ``preprocess``; fine-tune on data preprocessed the same way."""

    data: str = ""
    out: str = ""
    model: str = "nnunet"
    preset: str = "base"
    cache: str | None = None
    layout: str | None = None
    label_scheme: str | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    epochs: int = 50
    steps_per_epoch: int = 250
    patch: tuple[int, int, int] = (64, 64, 64)
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    device: str | None = None
    workers: int = 2
    threads: int | None = None
    progress: bool = True
    distortions: Distortions = field(default_factory=Distortions)


@dataclass
class PretrainData:
    """The cache pretraining reads: every case in it (labelled or not), its channels and preprocessing."""

    cache: Path
    case_ids: list[str]
    channels: tuple[str, ...]
    preprocessing: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    """Raw cases left out because they failed a check: case id -> reason."""


def check_config(cfg: PretrainConfig) -> None:
    """Raise :class:`ConfigError` (one line) for a setting that cannot work; touches no data."""
    from ..models.registry import model_info

    if not cfg.data or not Path(cfg.data).is_dir():
        raise ConfigError(f"{cfg.data or '(none)'}: data folder not found")
    if not cfg.out:
        raise ConfigError("no run folder given (--out)")
    model_info(cfg.model)
    for name in ("epochs", "steps_per_epoch", "batch_size", "lr"):
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"{name} must be positive, got {getattr(cfg, name)}")
    if len(cfg.patch) != 3 or any(int(p) < 1 for p in cfg.patch):
        raise ConfigError(f"patch must be three positive sizes, got {list(cfg.patch)}")


def pretrain_data(cfg: PretrainConfig, run: Path) -> PretrainData:
    """The cache: ``cfg.data`` itself if it is one, else the raw cases preprocessed into ``cfg.cache`` or
    ``RUN/cache`` (cases that fail are listed and skipped). Labels play no part."""
    from ..data.preprocessing.cache import cached_case_ids, cached_config, is_cache, read_index
    from ..data.preprocessing.preprocess import preprocess_raw

    data = Path(cfg.data)
    cache = data if is_cache(data) else Path(cfg.cache) if cfg.cache else run / "cache"
    skipped = preprocess_raw(data, cache, cfg.preprocess, progress=cfg.progress, layout=cfg.layout,
                             label_scheme=cfg.label_scheme) if cache != data else {}
    ids = cached_case_ids(cache)
    if not ids:
        raise ConfigError(f"{cache}: no preprocessed cases to pretrain on")
    channels = read_index(cache)["channels"]  # an error naming dataset.json when it records none
    return PretrainData(cache, ids, tuple(channels), to_dict(cached_config(cache)), skipped)


def restoration_network(cfg: PretrainConfig, channels: int) -> nn.Module:
    """The registered network with ``channels`` inputs and as many linear outputs; refuses a patch it cannot take."""
    from ..models.registry import build_model

    model = build_model(cfg.model, in_channels=channels, out_channels=channels, preset=cfg.preset,
                        deep_supervision=False)
    d = int(getattr(model, "size_divisor", 1))
    if any(int(p) % d for p in cfg.patch):
        raise ConfigError(f"patch {'x'.join(map(str, cfg.patch))} does not fit model {cfg.model!r}"
                          f" (sides must be multiples of {d})")
    return model


def save_pretrained(run: Path, model: nn.Module, cfg: PretrainConfig, data: PretrainData, history: list[dict]) -> None:
    """``checkpoints/last.pt`` (channels and preprocessing of the cache) and ``log.csv``, each atomic."""
    ckpt = make_checkpoint(model, model_name=cfg.model, model_kwargs=model.build_kwargs, channels=data.channels,
                           label_scheme="none", preprocessing=data.preprocessing, patch_size=cfg.patch,
                           provenance={"epoch": history[-1]["epoch"], "task": TASK, "config": to_dict(cfg),
                                       "metrics": history[-1], "train_cases": data.case_ids})
    ckpt["provenance"]["versions"] = {k: str(v) for k, v in ckpt["provenance"]["versions"].items()}
    save_checkpoint(ckpt, run / "checkpoints" / "last.pt")
    write_log(run / "log.csv", history)


def fit_restoration(cfg: PretrainConfig, model: nn.Module, data: PretrainData, run: Path,
                    device: torch.device) -> list[dict]:
    """Train the restoration task for ``cfg.epochs``, saving after each epoch; returns the per-epoch history."""
    from tqdm.auto import tqdm

    model.to(device)
    dataset = RestorationPatches(data.cache, data.case_ids, cfg.patch, cfg.steps_per_epoch * cfg.batch_size,
                                 cfg.seed, cfg.distortions)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for g in optimizer.param_groups:
        g["base_lr"] = cfg.lr
    loss_fn = DeepSupervisionLoss(nn.MSELoss())
    history, total = [], cfg.epochs * cfg.steps_per_epoch
    settings = EpochSettings(device, total_steps=total, grad_clip=12.0)
    bar = tqdm(total=total, unit="step", desc="pretrain", disable=not cfg.progress, dynamic_ncols=True)
    for epoch in range(1, cfg.epochs + 1):
        dataset.epoch = epoch
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers,
                            drop_last=True)
        stats = train_one_epoch(model, loader, loss_fn, optimizer, settings, step=(epoch - 1) * cfg.steps_per_epoch,
                                progress=lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
        history.append({"epoch": epoch, "train_loss": round(stats.loss, 6), "lr": optimizer.param_groups[0]["lr"],
                        "seconds": round(stats.seconds, 2), "data_wait": round(stats.data_wait, 3)})
        save_pretrained(run, model, cfg, data, history)
    bar.close()
    return history


def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Run the restoration pretraining described by ``cfg``; returns ``{"run", "history", "seconds", "cases"}``."""
    check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Path(cfg.out)
    data = pretrain_data(cfg, run)  # a raw case that fails a check is skipped; none left: CaseError
    dump_yaml(cfg, run / "config.yaml")
    seed_everything(cfg.seed)  # the initial weights depend on the seed only
    model = restoration_network(cfg, len(data.channels))
    device = ddp.device_for(ddp.DistInfo(), cfg.device)
    t0 = time.perf_counter()
    history = fit_restoration(cfg, model, data, run, device)
    return {"run": str(run), "history": history, "seconds": time.perf_counter() - t0, "cases": len(data.case_ids),
            "skipped": data.skipped}
