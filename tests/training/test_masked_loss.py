"""Mixed data (issue 20): a group a case's scheme cannot express is left out of that case's loss, and the loss
on the cases that do label it is exactly the unmasked one (known tensors)."""

from __future__ import annotations

import torch

from brats_seg.training.losses import DiceBCELoss, build_loss

FLOAT32 = {"rtol": 1e-6, "atol": 1e-7}  # the loss runs in float32: equal up to its rounding


def _tensors(seed=0, b=3, g=4):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, g, 5, 4, 3, generator=gen, dtype=torch.float64)
    target = (torch.rand(b, g, 5, 4, 3, generator=gen) > 0.6).double()
    return logits, target


def test_all_known_is_the_unmasked_loss_bitwise():
    logits, target = _tensors()
    for batch in (True, False):
        loss = DiceBCELoss(batch_dice=batch)
        assert torch.equal(loss(logits, target, torch.ones(3, 4, dtype=torch.bool)), loss(logits, target))


def test_masked_loss_equals_the_unmasked_loss_of_the_cases_that_label_the_group():
    """One output group (RC); samples 0 and 2 label it, sample 1 (a brats2021 case) cannot."""
    logits, target = _tensors(g=1)
    target[1] = 1.0  # whatever sample 1 holds must not matter
    known = torch.tensor([[True], [False], [True]])
    for batch in (True, False):
        loss = DiceBCELoss(batch_dice=batch)
        masked = loss(logits, target, known)
        torch.testing.assert_close(masked, loss(logits[[0, 2]], target[[0, 2]]), **FLOAT32)


def test_unknown_group_gets_no_gradient_and_known_groups_train_on_every_case():
    logits, target = _tensors()
    logits.requires_grad_(True)
    known = torch.ones(3, 4, dtype=torch.bool)
    known[1, 3] = False
    build_loss("dice_bce")(logits, target, known).backward()
    assert torch.count_nonzero(logits.grad[1, 3]) == 0
    assert all(torch.count_nonzero(logits.grad[i, g]) > 0 for i in range(3) for g in range(4) if known[i, g])


def test_per_group_dice_terms_match_the_unmasked_ones():
    """Per-sample Dice (nnU-Net's batch_dice=False): the masked Dice term is the mean of the unmasked per-pair
    Dice terms over the known pairs only."""
    logits, target = _tensors()
    known = torch.tensor([[True, True, True, False], [True, True, True, True], [True, False, True, False]])
    loss = DiceBCELoss(batch_dice=False)
    probs = torch.sigmoid(logits)
    inter, denom = (probs * target).sum((2, 3, 4)), (probs + target).sum((2, 3, 4))
    dice = (2 * inter + 1e-5) / (denom + 1e-5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((2, 3, 4))
    expected = 1 - dice[known].mean() + bce[known].mean()
    torch.testing.assert_close(loss(logits, target, known), expected, **FLOAT32)
