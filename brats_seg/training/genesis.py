"""Models Genesis distortions (Zhou et al., MICCAI 2019 / MedIA 2021, arXiv:1908.06912) and the
restoration patches built from them.

What the reference code (github.com/MrGiovanni/ModelsGenesis, ``utils.py`` and ``config.py``) does,
and what we do: a patch is flipped along random axes (p 0.4, up to three times; input and target
alike), then distorted: local voxel shuffling inside many small blocks (p 0.5), a non-linear
intensity remapping by a random cubic Bezier curve through (0, 0) and (1, 1), decreasing half the
time (p 0.9), then in-painting (noise boxes; p 0.9 x 0.2) or out-painting (noise outside kept boxes;
p 0.9 x 0.8). The network restores the undistorted patch under an MSE loss.

Where we differ (MRI, several channels, fine-tuning afterwards):

- the distortions run on each patch's channels rescaled to [0, 1] by their own minimum and maximum
  (the reference clips CT to [-1000, 1000] HU and scales it to [0, 1]), and the result is mapped
  back, so the network reads and restores intensities in the cache's normalization: exactly the
  numbers fine-tuning feeds it;
- the four channels share one distortion (the same curve, blocks and boxes);
- the decreasing curve is ``1 - curve`` rather than the reference's re-sorted control points;
- the network is any registered segmentation network with ``in_channels`` linear outputs (the
  reference: its 3-D U-Net with a sigmoid output), trained with AdamW (the reference: SGD, lr 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class Distortions:
    """Probabilities and sizes of the distortions (defaults: the reference code's ``config.py``)."""

    p_flip: float = 0.4
    p_shuffle: float = 0.5
    shuffle_blocks: int = 10000
    p_intensity: float = 0.9
    p_paint: float = 0.9
    p_outpaint: float = 0.8


def _box(rng: np.random.Generator, shape: tuple[int, ...], sizes: list[int], margin: int = 3) -> tuple:
    """Slices of a box of ``sizes`` at a random place at least ``margin`` voxels from the border where it fits."""
    lo = []
    for s, b in zip(shape, sizes):
        m = margin if s - b - 2 * margin >= 0 else 0
        lo.append(int(rng.integers(m, s - b - m + 1)))
    return (slice(None), *[slice(l, l + b) for l, b in zip(lo, sizes)])


def flip(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Flip input and target ``(C, *patch)`` along a random spatial axis while ``rng.random() < p`` (at most 3x)."""
    for _ in range(3):
        if rng.random() >= p:
            break
        axis = 1 + int(rng.integers(3))
        x, y = np.flip(x, axis), np.flip(y, axis)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def local_shuffle(x: np.ndarray, rng: np.random.Generator, n_blocks: int = 10000) -> np.ndarray:
    """Shuffle the voxels inside ``n_blocks`` small random blocks (each side up to a tenth of the patch's)."""
    out = x.copy()
    shape = x.shape[1:]
    for _ in range(n_blocks):
        size = [int(rng.integers(1, max(1, s // 10) + 1)) for s in shape]
        sl = _box(rng, shape, size, margin=0)
        block = x[sl].reshape(x.shape[0], -1)
        out[sl] = block[:, rng.permutation(block.shape[1])].reshape(out[sl].shape)
    return out


def bezier_intensity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Remap [0, 1] intensities by a cubic Bezier curve from (0, 0) to (1, 1) with two random control points;
    half the time the curve is turned upside down (``1 - curve``)."""
    (x1, y1), (x2, y2) = rng.random((2, 2))
    t = np.linspace(0, 1, 1000)
    xs = 3 * (1 - t) ** 2 * t * x1 + 3 * (1 - t) * t**2 * x2 + t**3
    ys = 3 * (1 - t) ** 2 * t * y1 + 3 * (1 - t) * t**2 * y2 + t**3
    order = np.argsort(xs)
    out = np.interp(x, xs[order], ys[order])
    return (1.0 - out if rng.random() < 0.5 else out).astype(x.dtype)


def in_paint(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Up to five boxes (sides a sixth to a third of the patch's; each further one with p 0.95) filled with
    uniform noise in [0, 1]."""
    x = x.copy()
    shape = x.shape[1:]
    for _ in range(5):
        if rng.random() >= 0.95:
            break
        sl = _box(rng, shape, [int(rng.integers(max(1, s // 6), max(1, s // 3) + 1)) for s in shape])
        x[sl] = rng.random(x[sl].shape, dtype=np.float32)
    return x


def out_paint(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in [0, 1] everywhere but inside one box (sides 3/7 to 4/7 of the patch's) and up to four
    more (each with p 0.95), which keep the original."""
    out = rng.random(x.shape, dtype=np.float32).astype(x.dtype)
    shape = x.shape[1:]
    for k in range(5):
        if k and rng.random() >= 0.95:
            break
        sl = _box(rng, shape, [s - int(rng.integers(3 * s // 7, 4 * s // 7 + 1)) for s in shape])
        out[sl] = x[sl]
    return out


def distort(x: np.ndarray, rng: np.random.Generator, cfg: Distortions) -> np.ndarray:
    """The Models Genesis distortions of a ``(C, *patch)`` array in [0, 1], in the reference's order."""
    if rng.random() < cfg.p_shuffle:
        x = local_shuffle(x, rng, cfg.shuffle_blocks)
    if rng.random() < cfg.p_intensity:
        x = bezier_intensity(x, rng)
    if rng.random() < cfg.p_paint:
        x = out_paint(x, rng) if rng.random() < cfg.p_outpaint else in_paint(x, rng)
    return x


def restoration_pair(patch: np.ndarray, rng: np.random.Generator, cfg: Distortions) -> tuple[np.ndarray, np.ndarray]:
    """``(distorted, original)`` for a ``(C, *patch)`` patch in the cache's normalization: the distortions act
    on each channel rescaled to [0, 1] by its min and max, and the result is mapped back to the same scale."""
    x, y = flip(patch.astype(np.float32), patch.astype(np.float32), rng, cfg.p_flip)
    lo, hi = y.min(axis=(1, 2, 3), keepdims=True), y.max(axis=(1, 2, 3), keepdims=True)
    scale = np.maximum(hi - lo, 1e-6)
    distorted = distort((x - lo) / scale, rng, cfg)
    return (distorted * scale + lo).astype(np.float32), y


class RestorationPatches(Dataset):
    """``{"image": distorted (C, *patch), "label": original (C, *patch)}`` from the cached cases (labels unread).

    Sample ``i`` of epoch ``e`` is drawn by a generator seeded with ``(seed, e, i)``: the same every run."""

    def __init__(self, cache: Path, case_ids: list[str], patch: tuple[int, int, int], samples: int, seed: int,
                 distortions: Distortions):
        from ..data.preprocessing.cache import load_cached

        self.cases = [load_cached(cache, c) for c in case_ids]
        self.patch, self.samples, self.seed, self.distortions = tuple(patch), samples, seed, distortions
        self.epoch = 0

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        image = self.cases[int(rng.integers(len(self.cases)))].image
        pad = [(0, 0)] + [(0, max(0, p - n)) for n, p in zip(image.shape[1:], self.patch)]
        if any(after for _, after in pad):
            image = np.pad(image, pad)  # a case smaller than the patch: zeros beyond it, as the background
        lo = [int(rng.integers(0, n - p + 1)) for n, p in zip(image.shape[1:], self.patch)]
        patch = np.asarray(image[(slice(None), *[slice(l, l + p) for l, p in zip(lo, self.patch)])])
        x, y = restoration_pair(patch, rng, self.distortions)
        return {"image": torch.from_numpy(x), "label": torch.from_numpy(y)}
