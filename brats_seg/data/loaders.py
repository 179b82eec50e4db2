"""Training patches and validation cases read from the preprocessing cache.

Cases are read with :func:`brats_seg.data.preprocessing.cache.load_cached`: ``image`` ``(C, h, w, d)``
float32, ``label`` ``(h, w, d)`` uint8 in the case's own label scheme. Arrays are
memory-mapped (``np.load(mmap_mode="r")``), or read whole into RAM for small datasets
(``in_memory``: the forked workers share the pages).

Patch sampling follows nnU-Net (Isensee et al. 2021): a fixed share of every
batch (``fg_fraction``, rounded up) is centred on a tumor voxel, the tumor label
drawn uniformly among those present (class balance), the rest are uniform over
the volume. Every patch is a pure function of ``(seed, index)``: the sampler
hands out indices ``epoch * n + i``, so the data stream does not depend on the
number of workers and a resumed run sees exactly the patches it would have seen.
Modality dropout (:mod:`.subsets`) is drawn per sample the same way, on its own stream, and
applied after augmentation, so a dropped channel is exactly the value a missing one gets in
prediction.
An augmentation that rotates a larger crop (nnU-Net's) gets that crop around the same
centre, for the samples it rotates (:func:`~brats_seg.data.augmentation.pipelines.sample_crop_size`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..conventions import get_scheme, labels_to_regions
from ..errors import CaseError
from ..outputs import Outputs
from .augmentation.augment_config import AugmentConfig
from .augmentation.metatensor import plain_tensor
from .augmentation.pipelines import augmentation_input_size, build_augmentation, sample_crop_size
from .preprocessing.cache import cache_nbytes, load_cached
from .subsets import ModalityDropout, drop_channels

IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
"""``in_memory=None`` reads the cache into RAM when it is smaller than this."""


def foreground_points(label: np.ndarray, scheme: str, max_points: int = 20000) -> dict[int, np.ndarray]:
    """Tumor voxel coordinates per label value of ``label`` ``(h, w, d)``: ``{value: (N, 3) int array}``,
    at most ``max_points`` per value (a fixed random subset)."""
    label = np.asarray(label)
    rng = np.random.default_rng(0)
    out = {}
    for v in get_scheme(scheme).labels:
        pts = np.argwhere(label == v)
        if len(pts) > max_points:
            pts = pts[rng.choice(len(pts), max_points, replace=False)]
        if len(pts):
            out[int(v)] = pts
    return out


def crop_patch(array: np.ndarray, lo: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``array[..., lo:lo+size]`` over the last 3 axes, zero-padded where it leaves the volume."""
    shape = array.shape[-3:]
    src = tuple(slice(max(l, 0), min(l + s, n)) for l, s, n in zip(lo, size, shape))
    out = np.zeros(array.shape[:-3] + tuple(size), dtype=array.dtype)
    dst = tuple(slice(sl.start - l, sl.stop - l) for sl, l in zip(src, lo))
    out[(..., *dst)] = array[(..., *src)]
    return out


# --------------------------------------------------------------------------- patches

def is_foreground_sample(index: int, batch_size: int, fg_fraction: float) -> bool:
    """Whether sample ``index`` of the stream is forced onto tumor.

    The first ``ceil(batch_size * fg_fraction)`` samples of every batch are, so
    each batch holds at least that share (with batch size 1, every
    ``1/fg_fraction``-th sample)."""
    if fg_fraction <= 0:
        return False
    if batch_size == 1:
        return math.floor((index + 1) * fg_fraction) > math.floor(index * fg_fraction)
    return index % batch_size < math.ceil(batch_size * fg_fraction)


class PatchDataset(Dataset):
    """Random patches: ``dataset[index]`` -> ``{"image": (C, *patch) float32, "label": (G, *patch) float32}``,
    and with ``dropout`` also ``"present": (C,) bool`` (the channels kept; the others hold
    :data:`~brats_seg.data.subsets.MISSING_VALUE`). ``outputs`` (:class:`~brats_seg.outputs.Outputs`)
    names the G target groups and adds ``"known": (G,) bool`` (the groups the case's scheme expresses);
    None: the nested WT, TC, ET.

    ``index`` is any non-negative integer; the sample is a pure function of
    ``(seed, index)`` (see :class:`EpochSampler`).
    """

    def __init__(self, cache_dir: str | Path, case_ids: Sequence[str], patch_size: Sequence[int], *,
                 batch_size: int = 2, fg_fraction: float = 0.34, augment: bool | AugmentConfig = True,
                 seed: int = 0, in_memory: bool | None = None, dropout: ModalityDropout | None = None,
                 outputs: Outputs | None = None):
        if not case_ids:
            raise CaseError(f"{cache_dir}: no training cases")
        self.cache_dir = Path(cache_dir)
        self.case_ids = list(case_ids)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.batch_size = batch_size
        self.fg_fraction = fg_fraction
        self.seed = seed
        if in_memory is None:
            in_memory = cache_nbytes(cache_dir, case_ids) < IN_MEMORY_LIMIT_BYTES
        self.cases = [load_cached(cache_dir, c, mmap=not in_memory) for c in self.case_ids]
        self._foreground: dict[int, dict[int, np.ndarray]] = {}  # case index -> foreground_points, on first use
        for case in self.cases:
            if case.label is None:
                raise CaseError(f"case {case.case_id}: no label in the cache; training needs labels")
        cfg = augment if isinstance(augment, AugmentConfig) else (AugmentConfig() if augment else None)
        self.augmentation = build_augmentation(cfg, self.patch_size) if cfg is not None else None
        self.crop_size = augmentation_input_size(cfg, self.patch_size)  # the largest crop a sample may need
        self.dropout = dropout
        self.outputs = outputs

    def __len__(self) -> int:
        return len(self.cases)

    def _points(self, i: int) -> dict[int, np.ndarray]:
        if i not in self._foreground:
            case = self.cases[i]
            self._foreground[i] = foreground_points(case.label, case.label_scheme)
        return self._foreground[i]

    def _corner(self, rng: np.random.Generator, i: int, foreground: bool) -> list[int]:
        shape = self.cases[i].image.shape[1:]
        fg = self._points(i) if foreground else {}
        if fg:
            pts = fg[list(fg)[rng.integers(len(fg))]]
            centre = pts[rng.integers(len(pts))]
            # centre on the tumor voxel, shifted so the patch stays inside the volume where it fits
            lo = [int(c) - p // 2 for c, p in zip(centre, self.patch_size)]
            return [min(max(l, 0), max(n - p, 0)) if n >= p else l for l, n, p in zip(lo, shape, self.patch_size)]
        return [int(rng.integers(0, n - p + 1)) if n >= p else -int(rng.integers(0, p - n + 1))
                for n, p in zip(shape, self.patch_size)]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        i = int(rng.integers(len(self.cases)))
        case = self.cases[i]
        lo = self._corner(rng, i, is_foreground_sample(int(index), self.batch_size, self.fg_fraction))
        size = self.patch_size
        if self.augmentation is not None:
            self.augmentation.set_random_state(seed=int(rng.integers(2**31)))
            size = sample_crop_size(self.augmentation, self.patch_size)  # larger for nnU-Net's rotation
            lo = [c - (n - p) // 2 for c, n, p in zip(lo, size, self.patch_size)]  # same centre
        image = torch.from_numpy(crop_patch(case.image, lo, size).astype(np.float32, copy=False))
        label = torch.from_numpy(crop_patch(case.label, lo, size)[None].astype(np.float32))
        if self.augmentation is not None:
            out = self.augmentation({"image": image, "label": label})
            image, label = plain_tensor(out["image"]).float(), plain_tensor(out["label"])
        lab = label[0].round().to(torch.uint8).numpy()
        if self.outputs is None:
            regions = labels_to_regions(lab, case.label_scheme)
            sample = {"image": image.contiguous(), "label": torch.from_numpy(regions.astype(np.float32))}
        else:
            regions, known = self.outputs.masks(lab, case.label_scheme)
            sample = {"image": image.contiguous(), "label": torch.from_numpy(regions.astype(np.float32)),
                      "known": torch.from_numpy(known)}
        if self.dropout is not None:
            sample["present"] = torch.from_numpy(self.dropout.draw(self.seed, index))
            drop_channels(sample["image"], sample["present"])
        return sample


class EpochSampler(Sampler[int]):
    """Yields ``epoch * total + rank * per_rank + i`` for ``i < per_rank``: disjoint, reproducible
    sample indices per epoch and rank. Call :meth:`set_epoch` before each epoch."""

    def __init__(self, samples_per_rank: int, *, rank: int = 0, world_size: int = 1):
        self.per_rank = samples_per_rank
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * self.per_rank * self.world_size + self.rank * self.per_rank
        return iter(range(base, base + self.per_rank))


def make_train_loader(cache_dir: str | Path, case_ids: Sequence[str], patch_size: Sequence[int],
                      batch_size: int, *, num_workers: int = 2, fg_fraction: float = 0.34,
                      augment: bool | AugmentConfig = True, seed: int = 0, steps_per_epoch: int = 250,
                      rank: int = 0, world_size: int = 1, in_memory: bool | None = None,
                      dropout: ModalityDropout | None = None, outputs: Outputs | None = None) -> DataLoader:
    """A loader of ``steps_per_epoch`` batches ``{"image": (B, C, *patch), "label": (B, 3, *patch)}``
    (and ``"present": (B, C)`` with modality ``dropout``).

    Call ``loader.sampler.set_epoch(epoch)`` before iterating each epoch. Under DDP
    give ``rank``/``world_size``; every rank draws its own disjoint samples.
    """
    dataset = PatchDataset(cache_dir, case_ids, patch_size, batch_size=batch_size, fg_fraction=fg_fraction,
                           augment=augment, seed=seed, in_memory=in_memory, dropout=dropout, outputs=outputs)
    sampler = EpochSampler(steps_per_epoch * batch_size, rank=rank, world_size=world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
                      prefetch_factor=2 if num_workers > 0 else None, drop_last=True)


def iter_validation_cases(cache_dir: str | Path, case_ids: Sequence[str],
                          outputs: Outputs | None = None) -> Iterator[tuple]:
    """Yield ``(case, regions (3, h, w, d) bool)`` for whole-case validation, one case at a time; with
    ``outputs``, ``(case, masks (G, h, w, d) bool, known (G,) bool)`` (:meth:`Outputs.masks`)."""
    for case_id in case_ids:
        case = load_cached(cache_dir, case_id)
        if outputs is None:
            yield case, case.regions()
        else:
            if case.label is None:
                raise CaseError(f"case {case.case_id}: no label in the cache")
            yield (case, *outputs.masks(np.asarray(case.label), case.label_scheme))
