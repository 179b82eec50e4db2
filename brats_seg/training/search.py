"""Differentiable V-NAS architecture search (Zhu et al. 2019, arXiv:1906.02817; DARTS, Liu et al. 2019).

First-order bilevel optimisation on :class:`~brats_seg.models.nas.search_space.VNASSearchNet`:
every step takes one weight step (SGD with momentum on the *training* split) and one
architecture step (Adam on ``alphas``, on the *validation* split), alternating; the first
``warmup_epochs`` train the weights only, so that the ops are compared once they can do
something (as V-NAS and DiNTS do).

Outputs in ``out/`` (all written atomically, after every epoch):

``search_state.pt``   resume state (weights, both optimizers, history), ``torch.load(weights_only=True)``
``arch_log.csv``      per epoch: losses and the softmax weight of every op in every cell
``arch_weights.png``  how those weights evolve, one panel per cell
``genotype.json``     the strongest op per cell: ``build_model("vnas", genotype=...)`` builds it

Data: a preprocessing cache folder (cases split alternately into training and validation
halves; patches from :func:`brats_seg.data.loaders.make_train_loader`), or in-memory
``[(image (C, H, W, D), regions (3, H, W, D)), ...]`` pairs (random patches; for tests
and notebooks). With a single case both splits draw from it.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import save_checkpoint
from ..config import from_dict, to_dict
from ..devices import pick_device
from ..errors import CheckpointError, ConfigError
from ..files import write_bytes
from ..models.nas.genotype import OP_NAMES, save_genotype
from ..models.nas.search_space import VNASSearchNet
from ..models.vnas import VNAS_PRESETS
from .losses import DiceBCELoss

STATE_FILE = "search_state.pt"
STATE_FORMAT = 1


@dataclass
class SearchConfig:
    """Settings of :func:`search` (saved in ``search_state.pt``; ``features``/``strides`` default to the preset)."""

    epochs: int = 10
    steps_per_epoch: int = 50
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 64])
    batch_size: int = 2
    preset: str = "tiny"
    features: list[int] | None = None
    strides: list[int] | None = None
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 3e-5
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    warmup_epochs: int = 0
    fg_fraction: float = 0.5
    num_workers: int = 0
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    """torch CPU threads (``None``: torch's default); 1 avoids oversubscription on small, busy CPUs."""

    def topology(self) -> tuple[list[int], list[int]]:
        if self.preset not in VNAS_PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {', '.join(VNAS_PRESETS)}")
        preset = VNAS_PRESETS[self.preset]
        return list(self.features or preset["features"]), list(self.strides or preset["strides"])


# --------------------------------------------------------------------------- data

class _ArrayPatches:
    """Random patches from in-memory ``(image, regions)`` pairs; epoch ``e`` draws from seed ``(seed, e)``."""

    def __init__(self, pairs: Sequence[tuple[Any, Any]], patch: Sequence[int], batch_size: int, steps: int,
                 seed: int) -> None:
        self.pairs = [(torch.as_tensor(np.asarray(i), dtype=torch.float32),
                       torch.as_tensor(np.asarray(r), dtype=torch.float32)) for i, r in pairs]
        for k, (image, regions) in enumerate(self.pairs):
            if image.ndim != 4 or regions.shape != (3, *image.shape[1:]):
                raise ConfigError(f"search data item {k}: need image (C, H, W, D) and regions (3, H, W, D),"
                                  f" got {tuple(image.shape)} and {tuple(regions.shape)}")
            if any(s < p for s, p in zip(image.shape[1:], patch)):
                raise ConfigError(f"search data item {k}: volume {tuple(image.shape[1:])} smaller than the"
                                  f" patch {tuple(patch)}")
        self.patch, self.batch_size, self.steps, self.seed = list(patch), batch_size, steps, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.steps):
            images, labels = [], []
            for _ in range(self.batch_size):
                image, regions = self.pairs[int(rng.integers(len(self.pairs)))]
                lo = [int(rng.integers(0, s - p + 1)) for s, p in zip(image.shape[1:], self.patch)]
                sl = tuple(slice(l, l + p) for l, p in zip(lo, self.patch))
                images.append(image[(slice(None), *sl)])
                labels.append(regions[(slice(None), *sl)])
            yield {"image": torch.stack(images), "label": torch.stack(labels)}


class _LoaderEpochs:
    """A DataLoader from ``make_train_loader`` with the ``set_epoch`` interface of :class:`_ArrayPatches`."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        self.loader.sampler.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader)


def _splits(data: Any, cfg: SearchConfig) -> tuple[Any, Any, int]:
    """(training batches, validation batches, input channels) for a cache folder or in-memory pairs."""
    if isinstance(data, (str, os.PathLike)):
        from ..data.cache import cached_case_ids, load_cached
        from ..data.loaders import make_train_loader

        cache = Path(data)
        if not cache.is_dir():
            raise ConfigError(f"{cache}: not a folder (give a preprocess cache: brats-seg preprocess DATA --out CACHE)")
        ids = cached_case_ids(cache)
        if not ids:
            raise ConfigError(f"{cache}: no cached cases (*_image.npy); run brats-seg preprocess first")
        train_ids, val_ids = (ids[0::2], ids[1::2]) if len(ids) > 1 else (ids, ids)
        channels = int(load_cached(cache, ids[0]).image.shape[0])

        def loader(case_ids: list[str], seed: int) -> _LoaderEpochs:
            return _LoaderEpochs(make_train_loader(cache, case_ids, cfg.patch_size, cfg.batch_size,
                                                   num_workers=cfg.num_workers, fg_fraction=cfg.fg_fraction,
                                                   augment=False, seed=seed, steps_per_epoch=cfg.steps_per_epoch))

        return loader(train_ids, cfg.seed), loader(val_ids, cfg.seed + 1), channels
    pairs = list(data)
    if not pairs:
        raise ConfigError("search: no data given")
    train, val = (pairs[0::2], pairs[1::2]) if len(pairs) > 1 else (pairs, pairs)
    return (_ArrayPatches(train, cfg.patch_size, cfg.batch_size, cfg.steps_per_epoch, cfg.seed),
            _ArrayPatches(val, cfg.patch_size, cfg.batch_size, cfg.steps_per_epoch, cfg.seed + 1),
            int(np.asarray(pairs[0][0]).shape[0]))


# --------------------------------------------------------------------------- logs

def write_arch_log(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """One row per epoch: epoch, losses, seconds, then ``cell{i}_{op}`` softmax weights."""
    n_cells = len(history[0]["weights"]) if history else 0
    op_cols = [f"cell{i}_{op}" for i in range(n_cells) for op in OP_NAMES]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_loss", "seconds", *op_cols])
    for row in history:
        writer.writerow([row["epoch"], f"{row['train_loss']:.5f}", f"{row['val_loss']:.5f}", f"{row['seconds']:.1f}",
                         *(f"{w:.5f}" for cell in row["weights"] for w in cell)])
    write_bytes(path, buf.getvalue().encode(), fsync=True)


def plot_arch_weights(path: Path, history: Sequence[dict[str, Any]], n_encoder: int) -> None:
    """One panel per cell: the softmax weight of each op against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray([row["weights"] for row in history])  # (epochs, cells, ops)
    epochs = [row["epoch"] for row in history]
    n_cells = weights.shape[1]
    cols = min(n_cells, 5)
    rows = -(-n_cells // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), squeeze=False, sharey=True)
    for c, ax in enumerate(axes.flat):
        if c >= n_cells:
            ax.axis("off")
            continue
        for k, op in enumerate(OP_NAMES):
            ax.plot(epochs, weights[:, c, k], marker="o", ms=2, label=op)
        where = f"encoder {c}" if c < n_encoder else f"decoder {n_cells - 1 - c}"
        ax.set_title(f"cell {c} ({where})", fontsize=8)
        ax.set_ylim(0, min(1.0, float(weights.max()) + 0.1))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel("softmax(alpha)", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes(path, buf.getvalue(), fsync=True)


# --------------------------------------------------------------------------- the loop

def search(data: str | os.PathLike | Sequence[tuple[Any, Any]], out: str | os.PathLike,
           cfg: SearchConfig | None = None, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the bilevel V-NAS search; returns the genotype (also in ``out/genotype.json``).

    ``data``: a preprocess cache folder, or ``[(image (C, H, W, D), regions (3, H, W, D)), ...]``.
    ``resume=True`` continues from ``out/search_state.pt`` (its saved config wins, except
    ``epochs``, which may be raised); without it an existing state is an error, not overwritten.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    state_path = out / STATE_FILE
    state = None
    if state_path.exists():
        if not resume:
            raise ConfigError(f"{state_path} exists: pass --resume (resume=True) to continue it, or pick another out")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{state_path}: not a readable search state ({e.__class__.__name__})") from None
        if not isinstance(state, dict) or state.get("kind") != "vnas_search":
            raise CheckpointError(f"{state_path}: not a V-NAS search state")
        epochs = (cfg or SearchConfig()).epochs
        cfg = from_dict(SearchConfig, {**state["config"], "epochs": max(epochs, state["config"]["epochs"])},
                        source=str(state_path))
    cfg = cfg or SearchConfig()
    if cfg.epochs < 1 or cfg.steps_per_epoch < 1 or cfg.batch_size < 1:
        raise ConfigError(f"search needs epochs, steps_per_epoch and batch_size >= 1, got {cfg.epochs},"
                          f" {cfg.steps_per_epoch}, {cfg.batch_size}")
    features, strides = cfg.topology()
    divisor = int(np.prod(strides))
    if len(cfg.patch_size) != 3 or any(p % divisor for p in cfg.patch_size):
        raise ConfigError(f"patch size {list(cfg.patch_size)} must be 3 sides, each a multiple of {divisor}"
                          f" (the search network's total stride)")
    train_batches, val_batches, in_channels = _splits(data, cfg)

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    net = VNASSearchNet(in_channels=in_channels, out_channels=3, features=features, strides=strides).to(device)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                            weight_decay=cfg.weight_decay, nesterov=True)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.arch_lr, betas=(0.5, 0.999),
                             weight_decay=cfg.arch_weight_decay)
    history: list[dict[str, Any]] = []
    start = 0
    if state is not None:
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as e:
            detail = str(e).splitlines()[0]
            raise CheckpointError(f"{state_path}: saved search network does not fit: {detail}") from None
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        history, start = list(state["history"]), int(state["epoch"])
    loss_fn = DiceBCELoss()
    out.mkdir(parents=True, exist_ok=True)
    n_encoder = len(features)

    bar = tqdm(total=(cfg.epochs - start) * cfg.steps_per_epoch, desc="V-NAS search", unit="step",
               disable=not progress)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        train_batches.set_epoch(epoch)
        val_batches.set_epoch(epoch)
        arch_step = epoch >= cfg.warmup_epochs
        net.train()
        t_losses, v_losses = [], []
        for tb, vb in zip(train_batches, val_batches):
            # weight step on the training split (alphas fixed: not in w_opt)
            w_opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(tb["image"].to(device)), tb["label"].to(device))
            loss.backward()
            w_opt.step()
            t_losses.append(float(loss.detach()))
            # architecture step on the validation split (first-order: at the current weights)
            a_opt.zero_grad(set_to_none=True)
            if arch_step:
                v_loss = loss_fn(net(vb["image"].to(device)), vb["label"].to(device))
                v_loss.backward()
                a_opt.step()
            else:
                with torch.no_grad():
                    v_loss = loss_fn(net(vb["image"].to(device)), vb["label"].to(device))
            v_losses.append(float(v_loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{t_losses[-1]:.3f}", val=f"{v_losses[-1]:.3f}")
        history.append({"epoch": epoch, "train_loss": float(np.mean(t_losses)), "val_loss": float(np.mean(v_losses)),
                        "seconds": time.perf_counter() - t0,
                        "weights": net.arch_weights().detach().cpu().tolist()})
        genotype = net.genotype()
        save_checkpoint({"kind": "vnas_search", "format": STATE_FORMAT, "epoch": epoch + 1, "config": to_dict(cfg),
                         "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                         "w_opt": w_opt.state_dict(), "a_opt": a_opt.state_dict(), "history": history,
                         "genotype": genotype}, state_path)
        write_arch_log(out / "arch_log.csv", history)
        plot_arch_weights(out / "arch_weights.png", history, n_encoder)
        save_genotype(genotype, out / "genotype.json")
    bar.close()
    if start >= cfg.epochs and state is not None:  # nothing left to do: make sure the outputs exist
        genotype = state["genotype"]
        write_arch_log(out / "arch_log.csv", history)
        plot_arch_weights(out / "arch_weights.png", history, n_encoder)
        save_genotype(genotype, out / "genotype.json")
    return genotype
