"""Self-supervised pretraining on unlabeled scans, Models Genesis-style.

Zhou et al., "Models Genesis: Generic Autodidactic Models for 3D Medical Image
Analysis", MICCAI 2019 / MedIA 2021 (arXiv:1908.06912): the network restores
patches distorted by a non-linear intensity transform (a random monotone Bézier
curve, p 0.9), local voxel shuffling (p 0.5), and in-painting or out-painting
(p 0.8, half each). The registered segmentation network is trained with
``out_channels = in_channels`` and an MSE loss; its encoder (and decoder, all but
the output head) then feed ``brats-seg train --init-from RUN/checkpoints/last.pt``.

Labels are not read: any cache works, including cases without labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import make_checkpoint, save_checkpoint
from ..config import PreprocessConfig, dump_yaml, to_dict
from ..errors import ConfigError
from . import ddp
from .history import write_log
from .loop import train_one_epoch
from .losses import DeepSupervisionLoss
from .state import seed_everything


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pretraining run (saved as ``RUN/config.yaml``)."""

    data: str = ""
    out: str = ""
    model: str = "nnunet"
    preset: str = "base"
    cache: str | None = None
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
    p_intensity: float = 0.9
    p_shuffle: float = 0.5
    p_paint: float = 0.8
    p_outpaint: float = 0.5


# --------------------------------------------------------------------------- distortions (one channel-stack at a time)


def bezier_intensity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Monotone cubic Bézier remapping of [0, 1] intensities (random control points; decreasing half the time)."""
    p1, p2 = rng.random(2)
    t = np.linspace(0, 1, 1000)
    xs = 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3
    ys = 3 * (1 - t) ** 2 * t * p2 + 3 * (1 - t) * t**2 * p1 + t**3
    order = np.argsort(xs)
    out = np.interp(x, xs[order], ys[order])
    return 1.0 - out if rng.random() < 0.5 else out


def local_shuffle(x: np.ndarray, rng: np.random.Generator, n_blocks: int = 200) -> np.ndarray:
    """Shuffle the voxels inside many small random blocks (each up to 1/10 of the patch side)."""
    x = x.copy()
    shape = x.shape[1:]
    for _ in range(n_blocks):
        size = [int(rng.integers(1, max(2, s // 10) + 1)) for s in shape]
        lo = [int(rng.integers(0, s - b + 1)) for s, b in zip(shape, size)]
        sl = (slice(None), *[slice(l, l + b) for l, b in zip(lo, size)])
        block = x[sl].reshape(x.shape[0], -1)
        x[sl] = block[:, rng.permutation(block.shape[1])].reshape(x[sl].shape)
    return x


def paint(x: np.ndarray, rng: np.random.Generator, outpaint: bool) -> np.ndarray:
    """In-painting: a few random boxes filled with noise; out-painting: noise outside one random box."""
    shape = x.shape[1:]
    noise = rng.random(x.shape).astype(x.dtype)

    def box(lo_frac: float, hi_frac: float):
        size = [int(rng.integers(int(s * lo_frac), int(s * hi_frac) + 1)) for s in shape]
        lo = [int(rng.integers(0, s - b + 1)) for s, b in zip(shape, size)]
        return (slice(None), *[slice(l, l + b) for l, b in zip(lo, size)])

    if outpaint:
        out, sl = noise, box(0.5, 0.8)
        out[sl] = x[sl]
        return out
    x = x.copy()
    for _ in range(int(rng.integers(1, 4))):
        sl = box(1 / 6, 1 / 3)
        x[sl] = noise[sl]
    return x


def distort(x: np.ndarray, rng: np.random.Generator, cfg: PretrainConfig) -> np.ndarray:
    """Models Genesis distortions of a ``(C, *patch)`` patch scaled to [0, 1]."""
    if rng.random() < cfg.p_intensity:
        x = bezier_intensity(x, rng).astype(np.float32)
    if rng.random() < cfg.p_shuffle:
        x = local_shuffle(x, rng)
    if rng.random() < cfg.p_paint:
        x = paint(x, rng, outpaint=rng.random() < cfg.p_outpaint)
    return x


class RestorationPatches(Dataset):
    """``{"image": distorted (C, *patch), "label": original (C, *patch)}``, both scaled to [0, 1] per channel."""

    def __init__(self, cache: Path, case_ids: list[str], cfg: PretrainConfig):
        from ..data.cache import load_cached

        self.cases = [load_cached(cache, c) for c in case_ids]
        self.cfg = cfg
        self.epoch = 0

    def __len__(self) -> int:
        return self.cfg.steps_per_epoch * self.cfg.batch_size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ..data.loaders import crop_patch

        rng = np.random.default_rng([self.cfg.seed, self.epoch, int(index)])
        case = self.cases[int(rng.integers(len(self.cases)))]
        shape, patch = case.image.shape[1:], self.cfg.patch
        lo = [int(rng.integers(0, n - p + 1)) if n >= p else 0 for n, p in zip(shape, patch)]
        x = crop_patch(case.image, lo, patch).astype(np.float32)
        lo_v, hi_v = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
        x = (x - lo_v) / np.maximum(hi_v - lo_v, 1e-6)
        return {"image": torch.from_numpy(distort(x, rng, self.cfg)), "label": torch.from_numpy(x)}


def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Train the restoration task; writes ``RUN/checkpoints/last.pt`` (a regular checkpoint whose
    network outputs ``in_channels`` restored channels) and ``RUN/log.csv``."""
    from tqdm.auto import tqdm

    from ..data.cache import is_cache
    from ..models.registry import build_model
    from .run_data import data_channels, prepare_data
    from .train_config import TrainConfig, check_config

    check_config(TrainConfig(data=cfg.data, out=cfg.out, model=cfg.model, patch=cfg.patch, epochs=cfg.epochs,
                             steps_per_epoch=cfg.steps_per_epoch, batch_size=cfg.batch_size, lr=cfg.lr))
    seed_everything(cfg.seed)
    channels = data_channels(TrainConfig(data=cfg.data, cache=cfg.cache))
    model = build_model(cfg.model, in_channels=len(channels), out_channels=len(channels), preset=cfg.preset,
                        deep_supervision=False)
    d = int(getattr(model, "size_divisor", 1))
    if any(p % d for p in cfg.patch):
        raise ConfigError(f"patch {'x'.join(map(str, cfg.patch))} does not fit model {cfg.model!r}"
                          f" (sides must be multiples of {d})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, run / "config.yaml")
    info = ddp.DistInfo()
    data = prepare_data(TrainConfig(data=cfg.data, out=cfg.out, cache=cfg.cache, preprocess=cfg.preprocess, folds=1,
                                    progress=cfg.progress), run, info)
    if not is_cache(data.cache):
        raise ConfigError(f"{data.cache}: no preprocessed cases")
    device = ddp.device_for(info, cfg.device)
    model.to(device)
    dataset = RestorationPatches(data.cache, data.train_ids, cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for g in optimizer.param_groups:
        g["base_lr"] = cfg.lr
    loss_fn = DeepSupervisionLoss(nn.MSELoss())
    history, total = [], cfg.epochs * cfg.steps_per_epoch
    bar = tqdm(total=total, unit="step", desc="pretrain", disable=not cfg.progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        dataset.epoch = epoch
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers,
                            drop_last=True)
        stats = train_one_epoch(model, loader, loss_fn, optimizer, device=device,
                                step=(epoch - 1) * cfg.steps_per_epoch, total_steps=total, grad_clip=12.0,
                                progress=lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
        history.append({"epoch": epoch, "train_loss": round(stats.loss, 6), "lr": optimizer.param_groups[0]["lr"],
                        "seconds": round(stats.seconds, 2), "data_wait": round(stats.data_wait, 3)})
        ckpt = make_checkpoint(model, model_name=cfg.model, model_kwargs=model.build_kwargs, channels=data.channels,
                               label_scheme=data.label_scheme, preprocessing=data.preprocessing, patch_size=cfg.patch,
                               provenance={"epoch": epoch, "task": "models_genesis_restoration",
                                           "config": to_dict(cfg), "metrics": history[-1]})
        ckpt["provenance"]["versions"] = {k: str(v) for k, v in ckpt["provenance"]["versions"].items()}
        save_checkpoint(ckpt, run / "checkpoints" / "last.pt")
        write_log(run / "log.csv", history)
    bar.close()
    return {"run": str(run), "history": history, "seconds": time.perf_counter() - t0}
