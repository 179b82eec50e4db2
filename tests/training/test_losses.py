"""Losses: region Dice+BCE, softmax Dice+CE, deep supervision weights and target resizing."""

from __future__ import annotations

import pytest
import torch

from brats_seg.errors import ConfigError
from brats_seg.inference.activations import softmax_to_regions
from brats_seg.training.losses import (
    DeepSupervisionLoss,
    DiceBCELoss,
    build_loss,
    deep_supervision_weights,
    regions_to_classes,
)


def _target():
    t = torch.zeros(2, 3, 8, 8, 8)
    t[:, 0, 2:6, 2:6, 2:6] = 1
    t[:, 1, 3:5, 3:5, 3:5] = 1
    t[:, 2, 3:4, 3:5, 3:5] = 1
    return t


def test_perfect_logits_give_low_loss_and_wrong_ones_high():
    t = _target()
    good, bad = (t * 2 - 1) * 20, (1 - 2 * t) * 20
    loss = DiceBCELoss()
    assert loss(good, t) < 0.01 < 1.5 < loss(bad, t)


def test_classes_roundtrip_and_softmax_loss():
    t = _target()
    c = regions_to_classes(t)
    assert set(c.unique().tolist()) == {0, 1, 2, 3}
    logits = torch.nn.functional.one_hot(c, 4).movedim(-1, 1).float() * 20
    assert torch.equal(softmax_to_regions(logits) > 0.5, t > 0.5)
    ce = build_loss("dice_ce")
    assert ce(logits, t) < 0.01 < 1.0 < ce(-logits, t)


def test_deep_supervision_weights_and_resizing():
    assert deep_supervision_weights(1) == [1.0]
    w = deep_supervision_weights(4)
    assert w[-1] == 0 and abs(sum(w) - 1) < 1e-9 and w[0] == 2 * w[1] == 4 * w[2]
    t = _target()
    ds = DeepSupervisionLoss(DiceBCELoss())
    full = (t * 2 - 1) * 20
    half = torch.nn.functional.interpolate(full, size=(4, 4, 4), mode="nearest")
    quarter = torch.nn.functional.interpolate(full, size=(2, 2, 2), mode="nearest")
    assert ds([full, half, quarter], t) < 0.01
    assert ds([full, -half, quarter], t) > 0.3  # the half-resolution head counts
    assert ds([full, half, -quarter], t) < 0.01  # the lowest gets weight 0 (nnU-Net)


def test_unknown_loss():
    with pytest.raises(ConfigError, match="unknown loss"):
        build_loss("focal")


def test_per_sample_dice_is_the_mean_of_each_samples_dice():
    """``batch_dice=False`` (nnU-Net's BraTS plan): Dice per sample and region, averaged; batch Dice pools them."""
    t = _target()
    t[1] = 0  # the second sample has no tumor
    logits = (t * 2 - 1) * 3
    per_sample = DiceBCELoss(batch_dice=False)(logits, t)
    each = torch.stack([DiceBCELoss(batch_dice=True)(logits[i:i + 1], t[i:i + 1]) for i in range(2)]).mean()
    assert per_sample.item() == pytest.approx(each.item(), rel=1e-5)
    assert per_sample.item() != pytest.approx(DiceBCELoss(batch_dice=True)(logits, t).item(), rel=1e-3)
