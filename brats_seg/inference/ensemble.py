"""Averaging probability maps over ensemble members and test-time mirrors.

EMMA (Kamnitsas et al., "Ensembles of Multiple Models and Architectures for
Robust Brain Tumour Segmentation", BrainLes 2017) averages the class
probabilities of differently built networks; we do the same for the sigmoid
region probabilities, with optional per-member weights. Uncertainty is either
the weighted variance across all samples (members x mirrors) or the binary
entropy of the averaged probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..errors import BratsSegError, CheckpointError
from ..outputs import Outputs, region_outputs

if TYPE_CHECKING:
    from .members import Member

UNCERTAINTY_KINDS = ("variance", "entropy")


class ProbabilityAverager:
    """Running weighted mean (and, if asked, variance) of probability maps, in place.

    ``add(p, w)`` with ``p`` any shape (all the same); ``mean()``; ``variance()``
    (weighted population variance, needs ``track_variance=True``).
    """

    def __init__(self, track_variance: bool = False):
        self.track_variance = track_variance
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None
        self.weight = 0.0

    def add(self, p: torch.Tensor, weight: float = 1.0) -> None:
        if weight < 0:
            raise ValueError(f"ensemble weights must be >= 0, got {weight}")
        p = p.float()
        if self.total is None:
            self.total = torch.zeros_like(p)
            if self.track_variance:
                self.squares = torch.zeros_like(p)
        self.total.add_(p, alpha=weight)
        if self.squares is not None:
            self.squares.addcmul_(p, p, value=weight)
        self.weight += weight

    def absorb(self, total, squares, weight: float) -> None:
        """Merge another averager's weighted sums (tensors or arrays, e.g. after restoring
        them to another grid); ``squares`` may be None when variance is not tracked."""
        total = torch.as_tensor(total, dtype=torch.float32)
        if self.total is None:
            self.total = torch.zeros_like(total)
            if self.track_variance:
                self.squares = torch.zeros_like(total)
        self.total.add_(total)
        if self.squares is not None:
            if squares is None:
                raise ValueError("variance is tracked here but the merged sums carry no squares")
            self.squares.add_(torch.as_tensor(squares, dtype=torch.float32))
        self.weight += weight

    def mean(self) -> torch.Tensor:
        if self.total is None or self.weight <= 0:
            raise ValueError("nothing (or only zero weights) to average")
        return self.total / self.weight

    def variance(self) -> torch.Tensor:
        if self.squares is None:
            raise ValueError("variance not tracked (ProbabilityAverager(track_variance=True))")
        m = self.mean()
        return (self.squares / self.weight - m * m).clamp_min_(0.0)


def binary_entropy(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Entropy in bits of a Bernoulli probability map (0 where certain, 1 at p = 0.5)."""
    p = p.clamp(eps, 1 - eps)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def normalized_weights(weights, n: int) -> list[float]:
    """Per-member weights (default equal), checked and scaled to sum to 1."""
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"{len(weights)} ensemble weights given for {n} checkpoints")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"ensemble weights must be >= 0 with a positive sum, got {weights}")
    s = sum(weights)
    return [w / s for w in weights]


def common_outputs(members: Sequence[Member]) -> tuple[Outputs, list[list[int]] | None, str | None]:
    """The ensemble's outputs: the members' own when they agree (``(outputs, None, None)``); else, for region
    members sharing groups, their common groups in the first member's order, each member's channels of them,
    and a note saying so. Label outputs that differ, or members sharing no group, raise :class:`CheckpointError`."""
    first = members[0].outputs
    if all(m.outputs.kind == first.kind and m.outputs.groups == first.groups
           and (first.kind == "regions" or m.outputs.values == first.values) for m in members):
        return first, None, None
    listed = "; ".join(f"{m.name}: {m.outputs.kind} {' '.join(m.outputs.groups)}" for m in members)
    common = [g for g in first.groups if all(g in m.outputs.region_groups for m in members)]
    if not common:
        raise CheckpointError(f"ensemble members predict different outputs and share no region group ({listed})")
    note = f"ensemble members predict different outputs ({listed}): the ensemble predicts their common groups" \
           f" {' '.join(common)}"
    return region_outputs(first.scheme, common), [[m.outputs.groups.index(g) for g in common] for m in members], note


def probability_samples(members: Sequence[Member], tta: int) -> int:
    """Probability maps averaged per case: one per member and mirror combination; a member that mirrors (and
    averages its folds) inside its network (nnU-Net imports) gives one."""
    from .tta import mirror_combinations

    return sum(1 if m.mirrors_inside else len(mirror_combinations(tta)) for m in members)


def check_variance(members: Sequence[Member], tta: int, uncertainty: str | None) -> None:
    """Refuse ``uncertainty="variance"`` over fewer than two probability maps (it would be a map of zeros)."""
    if uncertainty == "variance" and probability_samples(members, tta) < 2:
        inside = "".join(f" ({m.name} averages its folds and mirrorings inside each window, as nnU-Net does)"
                         for m in members[:1] if m.mirrors_inside)
        raise BratsSegError(f"--uncertainty variance needs several probability maps to compare: an ensemble or"
                            f" --tta 2..8{inside}; use --uncertainty entropy")
