"""Where the first weights of each ``transfer`` strategy come from (:data:`STRATEGIES`).

Each strategy maker takes the experiment's :class:`Context` and returns ``(weights file or None,
note for the table)``; its preparatory training runs once into ``OUT/prep`` and is reused by a rerun.
The weights are loaded by ``brats-seg train --init-from`` (:func:`brats_seg.training.weight_transfer.load_pretrained`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..files import atomic_path
from .arms import train_arm
from .datasets import build_cache, split_dataset

if TYPE_CHECKING:
    from .transfer import TransferConfig

RANDOM_2D_NOTE = "random 2-D weights (NOT pretrained; no --weights-2d given)"


@dataclass
class Context:
    """What the strategies need: the config, the folders, the full training cache, the device."""

    cfg: TransferConfig
    out: Path
    pool_cache: Path
    device: str | None
    progress: bool
    weights_2d: str | None
    prep_seconds: dict[str, float] = field(default_factory=dict)


def random_resnet_2d(model_name: str, preset: str, path: Path, seed: int = 0) -> Path:
    """Write a torchvision-format 2-D ResNet state dict with RANDOM weights (He init; BN identity)
    whose names and widths fit the encoder of ``model_name`` at ``preset``. Only for testing the
    inflation path: it carries no pretrained knowledge."""
    import torch

    from ..models.registry import build_model

    model = build_model(model_name, preset=preset)
    prefixes = tuple(getattr(model, "encoder_prefixes", ()) or ())
    own = {k[len(p):]: v for k, v in model.state_dict().items() for p in prefixes if k.startswith(p)}
    if "conv1.weight" not in own or own["conv1.weight"].ndim != 5:
        raise ConfigError(f"model {model_name!r} has no ResNet encoder (conv1, layer1..4) to inflate 2-D weights into")
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, value in own.items():
        if value.ndim == 5:
            o, i, _, kh, kw = value.shape
            i = 3 if key == "conv1.weight" else i  # RGB stem, as torchvision's
            state[key] = torch.randn(o, i, kh, kw, generator=gen) * (2.0 / (i * kh * kw)) ** 0.5
        elif key.endswith("running_var") or key.endswith(".weight") and value.ndim == 1:
            state[key] = torch.ones_like(value)
        else:
            state[key] = torch.zeros_like(value)
    width = own[max(k for k in own if k.startswith("layer4") and k.endswith("weight"))].shape[0]
    state["fc.weight"] = torch.zeros(1000, width)  # torchvision's classifier: reported as unexpected, ignored
    state["fc.bias"] = torch.zeros(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def pretrain_weights(ctx: Context) -> tuple[Path | None, str]:
    """Models Genesis restoration pretraining (:func:`brats_seg.training.pretrain.pretrain`) on the images
    of every pool case (labels unused, inputs normalized as the fine-tuning caches are); returns its
    ``last.pt``, whose encoder and decoder (not the head) ``init_from`` loads. Reuses a finished
    pretraining found in ``out/prep/pretrain``."""
    from ..data.preprocessing.cache import cached_case_ids
    from ..training.pretrain import PretrainConfig, pretrain

    run = ctx.out / "prep" / "pretrain"
    b = ctx.cfg.pretrain_budget
    t0 = time.perf_counter()
    if not (run / "done.json").is_file():
        cfg = PretrainConfig(data=str(ctx.pool_cache), out=str(run), model=ctx.cfg.model, preset=b.preset,
                             epochs=b.epochs, steps_per_epoch=b.steps_per_epoch, patch=tuple(b.patch),
                             batch_size=b.batch_size, lr=b.lr, seed=ctx.cfg.seed, device=ctx.device,
                             workers=b.workers, threads=b.threads, progress=ctx.progress)
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "pretrain.log", "a") as log, contextlib.redirect_stdout(log):
            pretrain(cfg)
        with atomic_path(run / "done.json") as tmp:
            tmp.write_text(json.dumps({"done": True}))
    ctx.prep_seconds["pretrain"] = round(time.perf_counter() - t0, 2)
    n_pool = len(cached_case_ids(ctx.pool_cache))
    return (run / "checkpoints" / "last.pt",
            f"Models Genesis restoration pretraining on {n_pool} cases' images (labels unused), {b.steps} steps")


def synth2real_weights(ctx: Context) -> tuple[Path | None, str]:
    """Train on synthetic source cases (labels used) and return that checkpoint."""
    from ..data.synth import synthesize_dataset

    cfg = ctx.cfg
    source = ctx.out / "prep" / "synth_source"
    if not (source / "synth.json").is_file():
        synthesize_dataset(source, cfg.source_cases, seed=cfg.seed + 1000, spacing=cfg.source_spacing,
                           progress=ctx.progress)
    plan = dataclasses.replace(cfg.data, n_test=0, split="random")
    cache = build_cache(split_dataset(source, plan).train, ctx.out / "prep" / "synth_cache", cfg.data)
    arm = train_arm("synth-source", cache, ctx.out / "prep" / "synth_run", cfg.source_budget, model=cfg.model,
                    seed=cfg.seed, device=ctx.device)
    ctx.prep_seconds["synth_source"] = round(arm.train_seconds, 2)
    return arm.checkpoint, (f"supervised on {cfg.source_cases} synthetic cases ({cfg.source_spacing:g} mm),"
                            f" {cfg.source_budget.steps} steps")


def inflated_weights(ctx: Context) -> tuple[Path | None, str]:
    """The given 2-D file, or a random one written into ``out/prep`` and labeled as such."""
    if ctx.weights_2d:
        path = Path(ctx.weights_2d)
        if not path.is_file():
            raise ConfigError(f"{path}: --weights-2d file not found")
        return path, f"inflated 2-D weights from {path.name}"
    path = ctx.out / "prep" / "random_resnet2d_NOT_PRETRAINED.pt"
    if not path.is_file():
        random_resnet_2d(ctx.cfg.model, ctx.cfg.budget.preset, path, seed=ctx.cfg.seed)
    return path, RANDOM_2D_NOTE


STRATEGIES: dict[str, Callable[[Context], tuple[Path | None, str]] | None] = {
    "scratch": None,
    "pretrain": pretrain_weights,
    "synth2real": synth2real_weights,
    "inflated2d": inflated_weights,
}
"""Strategy -> function giving (initial weights file or None, note); ``None``: random init."""


def initial_weights(ctx: Context) -> dict[str, tuple[Path | None, str]]:
    """``{strategy: (weights file or None, note)}`` for every strategy of the experiment."""
    return {s: (None, "random initialization") if STRATEGIES[s] is None else STRATEGIES[s](ctx)
            for s in ctx.cfg.strategies}
