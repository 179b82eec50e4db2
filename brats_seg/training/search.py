"""Differentiable V-NAS architecture search (Zhu et al. 2019, arXiv:1906.02817; DARTS, Liu et al. 2019).

The search network (:class:`~brats_seg.models.nas.search_space.VNASSearchNet`, the paper's
``layer`` space by default) is trained in two phases:

1. **warm-up** (``warmup_epochs``, on by default): weight steps only, so that every candidate op
   can do something before the ops are compared. The paper warms the weights up first too.
2. **search**: every step takes one weight step on a batch of the *weight* half of the training
   cases, then one architecture step (``alphas``) on a batch of the *architecture* half,
   alternating. First-order: the architecture gradient is taken at the current weights (DARTS'
   first-order approximation; no unrolled second-order step).

The genotype is the strongest op of every layer after the last epoch. As in the paper: the
two disjoint halves of the training data, warm-up then alternating updates, the argmax
genotype. Different from the paper: the loss is this package's Dice + BCE on the three
sigmoid regions (WT, TC, ET), not the paper's Dice loss; the weights take SGD with Nesterov
momentum and the architecture Adam (DARTS' optimizers), and the schedule (``epochs``,
``steps_per_epoch``, patch, learning rates) is sized for a short run on one GPU or a CPU test,
not the paper's; the network around the searched layers differs as described in
:mod:`brats_seg.models.nas.search_space`. Retrain the genotype from scratch afterwards
(``brats-seg train --genotype``), as the paper does.

Outputs in ``out/`` (all written atomically, after every epoch):

``search_state.pt``   resume state (weights, both optimizers, history), ``torch.load(weights_only=True)``
``arch_log.csv``      per epoch: phase, losses and the softmax weight of every op in every layer
``arch_weights.png``  how those weights evolve, one panel per layer
``genotype.json``     the strongest op per layer: ``brats-seg train --genotype`` trains it
``splits.json``       (folder data) the case ids of the weight (``train``) and architecture (``val``) halves

Data: :func:`~brats_seg.training.search_data.search_data` (a raw dataset folder or a
preprocessing cache, as ``brats-seg train`` takes; or in-memory pairs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import save_checkpoint
from ..config import from_dict, to_dict
from ..devices import pick_device
from ..errors import CheckpointError, ConfigError
from ..files import write_text
from ..models.blocks import per_level
from ..models.nas.genotype import layer_names, save_genotype
from ..models.nas.search_space import SPACES, VNASSearchNet
from ..models.vnas import VNAS_PRESETS
from .losses import DiceBCELoss
from .search_data import SearchData, search_data
from .search_log import plot_arch_weights, write_arch_log

STATE_FILE = "search_state.pt"
SKIPPED_FILE = "skipped.json"
"""Raw cases the search left out because they failed a check (case id -> reason); absent when none was."""
STATE_FORMAT = 2


@dataclass
class SearchConfig:
    """Settings of :func:`search` (saved in ``search_state.pt``).

    ``space``: ``layer`` (the paper's) or ``level`` (smaller, ours). ``features``, ``strides``,
    ``blocks``, ``decoder_blocks`` default to the ``preset``'s (:data:`~brats_seg.models.vnas.VNAS_PRESETS`).
    ``warmup_epochs`` of the ``epochs`` take weight steps only. ``cache``: where a raw dataset
    is preprocessed to (default ``OUT/cache``).
    """

    epochs: int = 10
    steps_per_epoch: int = 50
    warmup_epochs: int = 3
    space: str = "layer"
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 64])
    batch_size: int = 2
    preset: str = "tiny"
    features: list[int] | None = None
    strides: list[int] | None = None
    blocks: list[int] | None = None
    decoder_blocks: list[int] | None = None
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 3e-5
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    fg_fraction: float = 0.5
    cache: str | None = None
    layout: str | None = None
    label_scheme: str | None = None
    num_workers: int = 0
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    """torch CPU threads (``None``: torch's default); 1 avoids oversubscription on small, busy CPUs."""

    def topology(self) -> dict[str, Any]:
        """``features``, ``strides``, ``blocks``, ``decoder_blocks``: the preset's unless given."""
        if self.preset not in VNAS_PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {', '.join(VNAS_PRESETS)}")
        preset = VNAS_PRESETS[self.preset]
        features = list(self.features or preset["features"])
        n = len(features)
        return {"features": features, "strides": list(self.strides or preset["strides"]),
                "blocks": per_level(preset["blocks"] if self.blocks is None else self.blocks, n, "blocks"),
                "decoder_blocks": per_level(preset["decoder_blocks"] if self.decoder_blocks is None
                                            else self.decoder_blocks, n - 1, "decoder_blocks")}


def check_search_config(cfg: SearchConfig) -> None:
    """Raise :class:`ConfigError` (one line) for settings that cannot work; touches no data."""
    if cfg.epochs < 1 or cfg.steps_per_epoch < 1 or cfg.batch_size < 1:
        raise ConfigError(f"search needs epochs, steps_per_epoch and batch_size >= 1, got {cfg.epochs},"
                          f" {cfg.steps_per_epoch}, {cfg.batch_size}")
    if not 0 <= cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"{cfg.warmup_epochs} warm-up epochs (--warmup) leave none of the {cfg.epochs} epochs"
                          f" (--epochs) to search: give --warmup 0..{max(cfg.epochs - 1, 0)} or more --epochs")
    if cfg.space not in SPACES:
        raise ConfigError(f"unknown search space {cfg.space!r}; choose one of {', '.join(SPACES)}")
    divisor = int(np.prod(cfg.topology()["strides"]))
    if len(cfg.patch_size) != 3 or any(p % divisor for p in cfg.patch_size):
        raise ConfigError(f"patch size {list(cfg.patch_size)} must be 3 sides, each a multiple of {divisor}"
                          f" (the search network's total stride)")


def _resume_state(out: Path, cfg: SearchConfig | None, resume: bool) -> tuple[SearchConfig, dict | None]:
    """The config to run and the saved state (None for a fresh search); the saved config wins on resume,
    except ``epochs``, which may be raised."""
    state_path = out / STATE_FILE
    if not state_path.exists():
        return cfg or SearchConfig(), None
    if not resume:
        raise ConfigError(f"{state_path} exists: pass --resume (resume=True) to continue it, or pick another out")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{state_path}: not a readable search state ({e.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("kind") != "vnas_search":
        raise CheckpointError(f"{state_path}: not a V-NAS search state")
    if state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{state_path}: search state format {state.get('format')} is from an older"
                              f" brats_seg (this one resumes format {STATE_FORMAT}); start a new search")
    epochs = max((cfg or SearchConfig()).epochs, state["config"]["epochs"])
    return from_dict(SearchConfig, {**state["config"], "epochs": epochs}, source=str(state_path)), state


def _build(cfg: SearchConfig, in_channels: int, device: torch.device):
    """The search network and its two optimizers (SGD on the weights, Adam on the architecture)."""
    torch.manual_seed(cfg.seed)
    net = VNASSearchNet(in_channels=in_channels, out_channels=3, space=cfg.space, **cfg.topology()).to(device)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                            weight_decay=cfg.weight_decay, nesterov=True)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.arch_lr, betas=(0.5, 0.999),
                             weight_decay=cfg.arch_weight_decay)
    return net, w_opt, a_opt


def _restore(state: dict, net: VNASSearchNet, w_opt, a_opt, where: Path) -> tuple[list[dict], int]:
    """Load a saved state into the network and optimizers; returns (history, epochs done)."""
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{where}: saved search network does not fit: {str(e).splitlines()[0]}") from None
    w_opt.load_state_dict(state["w_opt"])
    a_opt.load_state_dict(state["a_opt"])
    return list(state["history"]), int(state["epoch"])


def _search_epoch(net: VNASSearchNet, data: SearchData, loss_fn, w_opt, a_opt, device: torch.device, *,
                  arch_step: bool, bar) -> tuple[float, float]:
    """One epoch of alternating steps; returns the mean (weight-half, architecture-half) losses."""
    net.train()
    t_losses, v_losses = [], []
    for tb, vb in zip(data.weights, data.arch):
        w_opt.zero_grad(set_to_none=True)  # weight step (alphas are not in w_opt)
        loss = loss_fn(net(tb["image"].to(device)), tb["label"].to(device))
        loss.backward()
        w_opt.step()
        a_opt.zero_grad(set_to_none=True)  # architecture step at the current weights (first order)
        with torch.set_grad_enabled(arch_step):
            v_loss = loss_fn(net(vb["image"].to(device)), vb["label"].to(device))
        if arch_step:
            v_loss.backward()
            a_opt.step()
        t_losses.append(float(loss.detach()))
        v_losses.append(float(v_loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{t_losses[-1]:.3f}", val=f"{v_losses[-1]:.3f}", phase="search" if arch_step else "warm")
    return float(np.mean(t_losses)), float(np.mean(v_losses))


def _write_outputs(out: Path, history: list[dict], genotype: dict[str, Any]) -> None:
    names = layer_names(genotype)
    write_arch_log(out / "arch_log.csv", history, names)
    plot_arch_weights(out / "arch_weights.png", history, names)
    save_genotype(genotype, out / "genotype.json")


def _record_skipped(out: Path, skipped: dict[str, str]) -> None:
    """Write :data:`SKIPPED_FILE` in ``out`` when cases were left out; remove a stale one when none was."""
    path = out / SKIPPED_FILE
    if skipped:
        write_text(path, json.dumps(skipped, indent=1))
    elif path.is_file():
        path.unlink()


def search(data: str | os.PathLike | Sequence[tuple[Any, Any]], out: str | os.PathLike,
           cfg: SearchConfig | None = None, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the V-NAS search; returns the genotype (also in ``out/genotype.json``).

    ``data``: a dataset folder (raw or a preprocessing cache), or
    ``[(image (C, H, W, D), regions (3, H, W, D)), ...]``. ``resume=True`` continues from
    ``out/search_state.pt``; without it an existing state is an error, not overwritten. Raw cases
    that fail a check are left out and listed in ``out/skipped.json``.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    cfg, state = _resume_state(out, cfg, resume)
    check_search_config(cfg)
    halves = search_data(data, out, cfg, progress=progress)
    _record_skipped(out, halves.skipped)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = pick_device(cfg.device)
    net, w_opt, a_opt = _build(cfg, halves.in_channels, device)
    history, start = _restore(state, net, w_opt, a_opt, out / STATE_FILE) if state else ([], 0)
    loss_fn = DiceBCELoss()
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=(cfg.epochs - start) * cfg.steps_per_epoch, desc="V-NAS search", unit="step",
               disable=not progress)
    genotype = state["genotype"] if state else net.genotype()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        halves.weights.set_epoch(epoch)
        halves.arch.set_epoch(epoch)
        arch_step = epoch >= cfg.warmup_epochs
        t_loss, v_loss = _search_epoch(net, halves, loss_fn, w_opt, a_opt, device, arch_step=arch_step, bar=bar)
        history.append({"epoch": epoch, "phase": "search" if arch_step else "warmup", "train_loss": t_loss,
                        "val_loss": v_loss, "seconds": time.perf_counter() - t0,
                        "weights": net.arch_weights().detach().cpu().tolist()})
        genotype = net.genotype()
        save_checkpoint({"kind": "vnas_search", "format": STATE_FORMAT, "epoch": epoch + 1, "config": to_dict(cfg),
                         "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                         "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(), "history": history,
                         "genotype": genotype}, out / STATE_FILE)
        _write_outputs(out, history, genotype)
    bar.close()
    if start >= cfg.epochs:  # nothing left to do: make sure the outputs exist
        _write_outputs(out, history, genotype)
    return genotype
