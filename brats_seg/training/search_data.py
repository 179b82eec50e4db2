"""Batches for the V-NAS search: the data split into a weight half and an architecture half.

A dataset folder (raw, any layout ``brats-seg train`` reads) or a preprocessing cache goes
through the trainer's own data preparation (:func:`~brats_seg.training.trainer.prepare_data`:
raw data is preprocessed into ``cache`` or ``OUT/cache`` first, exactly as ``brats-seg train``
does); the labelled cases are then dealt alternately into the two halves (sorted ids: 1st, 3rd,
... for the weights; 2nd, 4th, ... for the architecture), recorded in ``OUT/splits.json`` as
``train`` (weights) and ``val`` (architecture). Patches come from
:func:`~brats_seg.data.loaders.make_train_loader` (no augmentation). In-memory
``[(image (C, H, W, D), regions (3, H, W, D)), ...]`` pairs (tests, notebooks) are split the
same way and cropped at random. With a single case both halves draw from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError


class ArrayPatches:
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
                sl = tuple(slice(a, a + p) for a, p in zip(lo, self.patch))
                images.append(image[(slice(None), *sl)])
                labels.append(regions[(slice(None), *sl)])
            yield {"image": torch.stack(images), "label": torch.stack(labels)}


class LoaderEpochs:
    """A DataLoader from ``make_train_loader`` with the ``set_epoch`` interface of :class:`ArrayPatches`."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        self.loader.sampler.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader)


@dataclass
class SearchData:
    """Batches of the weight half and of the architecture half; ``in_channels`` of the images;
    ``skipped``: raw cases left out because they failed a check (case id -> reason)."""

    weights: ArrayPatches | LoaderEpochs
    arch: ArrayPatches | LoaderEpochs
    in_channels: int
    skipped: dict[str, str] = field(default_factory=dict)


def halves(items: Sequence) -> tuple[list, list]:
    """``(items[0::2], items[1::2])``; a single item serves both halves."""
    items = list(items)
    return (items[0::2], items[1::2]) if len(items) > 1 else (items, items)


def _folder_data(data: Path, out: Path, cfg: Any, progress: bool) -> SearchData:
    from ..data.loaders import make_train_loader
    from .ddp import DistInfo
    from .run_data import prepare_data
    from .splits import save_splits
    from .train_config import TrainConfig

    if not data.is_dir():
        raise ConfigError(f"{data}: data folder not found (give a dataset folder or a preprocessing cache)")
    out.mkdir(parents=True, exist_ok=True)
    run = prepare_data(TrainConfig(data=str(data), out=str(out), cache=cfg.cache, folds=1, seed=cfg.seed,
                                   layout=cfg.layout, label_scheme=cfg.label_scheme,
                                   progress=progress), out, DistInfo())
    weight_ids, arch_ids = halves(run.train_ids)
    save_splits(out / "splits.json", [{"train": weight_ids, "val": arch_ids}], cfg.seed)

    def loader(case_ids: list[str], seed: int) -> LoaderEpochs:
        return LoaderEpochs(make_train_loader(run.cache, case_ids, cfg.patch_size, cfg.batch_size,
                                              num_workers=cfg.num_workers, fg_fraction=cfg.fg_fraction,
                                              augment=False, seed=seed, steps_per_epoch=cfg.steps_per_epoch))

    return SearchData(loader(weight_ids, cfg.seed), loader(arch_ids, cfg.seed + 1), len(run.channels),
                      dict(run.skipped))


def search_data(data: str | os.PathLike | Sequence[tuple[Any, Any]], out: Path, cfg: Any, *,
                progress: bool = True) -> SearchData:
    """The two halves of ``data`` (a folder, or in-memory pairs) for a :class:`~.search.SearchConfig` ``cfg``."""
    if isinstance(data, (str, os.PathLike)):
        return _folder_data(Path(data), out, cfg, progress)
    pairs = list(data)
    if not pairs:
        raise ConfigError("search: no data given")
    weight_pairs, arch_pairs = halves(pairs)
    return SearchData(ArrayPatches(weight_pairs, cfg.patch_size, cfg.batch_size, cfg.steps_per_epoch, cfg.seed),
                      ArrayPatches(arch_pairs, cfg.patch_size, cfg.batch_size, cfg.steps_per_epoch, cfg.seed + 1),
                      int(np.asarray(pairs[0][0]).shape[0]))
