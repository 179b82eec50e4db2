"""Segmentation losses: region-based Dice + BCE (default) or softmax Dice + CE over labels.

Region-based training (sigmoid outputs for the nested regions WT, TC, ET) is what
the BraTS winners used (Isensee et al. 2021, "nnU-Net for brain tumor
segmentation", BrainLes 2020; Wang et al. 2017 cascades). Targets are ``(B, 3, *S)``
float masks from :mod:`brats_seg.data.loaders`. The softmax option classifies the
four disjoint classes background, edema (WT\\TC), core (TC\\ET) and ET; its network
has 4 outputs and :func:`brats_seg.inference.activations.softmax_to_regions` turns them back into region
probabilities (the inference contract).

Mixed data (brats2021 cases beside brats2024-gli ones): ``known`` ``(B, G)`` says which output
groups each sample's scheme can express; an unknown group is left out of that sample's loss
(its BCE terms and its share of the Dice sums), not taught as background: nnU-Net v2's
ignore-label idea, applied per case and group (:func:`masked_dice_bce`).

Deep supervision (Lee et al. 2015; nnU-Net): one loss per resolution, targets
downsampled by nearest neighbour, weights halving with depth and normalized to 1;
the lowest resolution gets weight 0 as in nnU-Net.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def regions_to_classes(target: torch.Tensor) -> torch.Tensor:
    """Nested region masks ``(B, 3, *S)`` -> class indices ``(B, *S)`` long: 0 bg, 1 WT\\TC, 2 TC\\ET, 3 ET."""
    t = target > 0.5
    return t[:, 0].long() + (t[:, 0] & t[:, 1]).long() + (t[:, 0] & t[:, 1] & t[:, 2]).long()


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5, *,
                   batch: bool = True) -> torch.Tensor:
    """1 - mean soft Dice; ``(B, K, *S)`` each. ``batch``: one Dice per channel over the whole batch
    (nnU-Net's batch Dice), else one per sample and channel, averaged (nnU-Net's ``batch_dice=False``)."""
    dims = (0, *range(2, probs.ndim)) if batch else tuple(range(2, probs.ndim))
    inter = (probs * target).sum(dims)
    denom = probs.sum(dims) + target.sum(dims)
    return 1.0 - ((2 * inter + smooth) / (denom + smooth)).mean()


def masked_dice_bce(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor, smooth: float = 1e-5, *,
                    batch: bool = True) -> torch.Tensor:
    """Soft Dice + BCE over the known (sample, group) pairs only. logits, target ``(B, G, *S)``; known
    ``(B, G)`` bool. Dice: one per group over its known samples (``batch``), or one per known pair,
    averaged; BCE: the mean over the voxels of known pairs. With every pair known it equals the
    unmasked loss; a group's terms equal the unmasked ones of the samples that label it."""
    spatial = tuple(range(2, logits.ndim))
    probs = torch.sigmoid(logits)
    inter, denom = (probs * target).sum(spatial), probs.sum(spatial) + target.sum(spatial)  # (B, G)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(spatial)  # (B, G)
    k = known.to(inter.dtype)
    if batch:  # sums over the known samples of each group
        inter, denom, weight = (inter * k).sum(0), (denom * k).sum(0), known.any(0)
    else:
        weight = known
    dice = (2 * inter + smooth) / (denom + smooth)
    dice_loss = 1.0 - dice[weight].mean() if weight.any() else logits.new_zeros(())
    return dice_loss + (bce * k).sum() / k.sum().clamp_min(1)  # every pair has as many voxels


class DiceBCELoss(nn.Module):
    """Sigmoid regions: soft Dice + binary cross-entropy. logits, target: ``(B, G, *S)``; ``known``
    ``(B, G)`` bool or None (every group known: the unmasked loss, computed as it always was)."""

    out_channels = 3

    def __init__(self, batch_dice: bool = True):
        super().__init__()
        self.batch_dice = batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        logits = logits.float()
        if known is not None and not bool(known.all()):
            return masked_dice_bce(logits, target, known, batch=self.batch_dice)
        return (soft_dice_loss(torch.sigmoid(logits), target, batch=self.batch_dice)
                + F.binary_cross_entropy_with_logits(logits, target))


class DiceCELoss(nn.Module):
    """Softmax over classes: soft Dice (foreground classes) + cross-entropy. logits ``(B, K, *S)``; target:
    one-hot classes ``(B, K, *S)`` (label outputs, :mod:`brats_seg.outputs`), or the nested region masks
    ``(B, 3, *S)`` for the 4 classes background, WT-TC, TC-ET, ET (``K = 4``)."""

    out_channels = 4

    def __init__(self, batch_dice: bool = True):
        super().__init__()
        self.batch_dice = batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        if known is not None and not bool(known.all()):
            raise ValueError("dice_ce trains the WT/TC/ET classes, which every nested scheme expresses")
        logits = logits.float()
        if target.shape[1] == logits.shape[1]:  # one-hot classes of label outputs
            classes, onehot = target.argmax(1), target.float()
        else:
            classes = regions_to_classes(target)
            onehot = F.one_hot(classes, 4).movedim(-1, 1).float()
        probs = torch.softmax(logits, dim=1)
        return (soft_dice_loss(probs[:, 1:], onehot[:, 1:], batch=self.batch_dice)
                + F.cross_entropy(logits, classes))


LOSSES: dict[str, Callable[[], nn.Module]] = {"dice_bce": DiceBCELoss, "dice_ce": DiceCELoss}
"""Loss name -> class (``--loss``)."""

OUTPUT_ACTIVATION = {"dice_bce": "sigmoid", "dice_ce": "softmax"}
"""How the network outputs of a loss become region probabilities (stored in checkpoints)."""


def deep_supervision_weights(n: int) -> list[float]:
    """nnU-Net's weights: 1, 1/2, 1/4, ..., the lowest resolution 0 (when n > 1), normalized to sum 1."""
    w = [0.5**i for i in range(n)]
    if n > 1:
        w[-1] = 0.0
    total = sum(w)
    return [x / total for x in w]


class DeepSupervisionLoss(nn.Module):
    """Applies ``loss`` to each output of a deep-supervision list, targets resized (nearest) to each."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor,
                known: torch.Tensor | None = None) -> torch.Tensor:
        extra = () if known is None else (known,)  # losses without a mask (pretraining's MSE) take two
        if isinstance(outputs, torch.Tensor):
            return self.loss(outputs, target, *extra)
        total = outputs[0].new_zeros((), dtype=torch.float32)
        for w, out in zip(deep_supervision_weights(len(outputs)), outputs):
            # a weight-0 head still enters the graph (zero gradients): DDP needs every parameter used
            t = target if out.shape[2:] == target.shape[2:] else F.interpolate(target, size=out.shape[2:],
                                                                               mode="nearest")
            total = total + w * self.loss(out, t, *extra)
        return total


def build_loss(name: str, *, batch_dice: bool = True) -> nn.Module:
    """The training loss ``name`` (``dice_bce`` or ``dice_ce``), wrapped for deep supervision."""
    from ..errors import ConfigError

    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return DeepSupervisionLoss(LOSSES[name](batch_dice=batch_dice))
