"""Test-time augmentation by mirroring (nnU-Net's default: all 8 flip combinations).

A prediction is averaged over the input mirrored along subsets of the three
spatial axes (each output mirrored back). The combinations are ordered so the
first ``n`` are the most useful: none, each single axis, the pairs, all three.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MIRROR_AXES: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))
"""Spatial axes flipped by each combination (0, 1, 2 = H, W, D)."""


def mirror_combinations(n: int) -> tuple[tuple[int, ...], ...]:
    """The first ``n`` mirror combinations; 0 and 1 both mean no augmentation."""
    if not 0 <= n <= len(MIRROR_AXES):
        raise ValueError(f"tta must be between 0 and {len(MIRROR_AXES)} mirror combinations, got {n}")
    return MIRROR_AXES[: max(1, n)]


def flip(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Mirror the spatial axes ``axes`` of ``(..., H, W, D)``; a no-op for ``()``."""
    return x.flip([a - 3 for a in axes]) if axes else x


def mirrored(predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, n: int):
    """Yield ``predict`` of ``image`` ``(..., H, W, D)`` under each of the first ``n`` mirror
    combinations, mirrored back into the input's orientation."""
    for axes in mirror_combinations(n):
        yield flip(predict(flip(image, axes)), axes)
