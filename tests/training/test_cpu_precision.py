"""``--amp auto`` on a CPU trains in fp32, bit for bit reproducibly.

Root cause of the NaN that ``brats-seg experiment transfer`` met on CPUs with native bf16
(avx512_bf16): torch 2.13's oneDNN computes the weight gradient of a bf16 3-D convolution whose
input is shallower than its kernel (2 voxels deep under 3x3x3: the deepest level of a U-Net on
32^3 patches) from uninitialized memory, so it differs on every call, is off by up to 1e37 and
sometimes NaN. ``auto`` therefore never picks bf16 on a CPU.
"""

from __future__ import annotations

import copy

import torch

from brats_seg.models.registry import build_model
from brats_seg.training.loop import EpochSettings, autocast, train_one_epoch


def test_auto_is_fp32_on_cpu():
    with autocast(torch.device("cpu"), "auto"):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with autocast(torch.device("cpu"), "bf16"):  # an explicit choice is honoured
        assert torch.is_autocast_enabled("cpu")


def test_training_steps_on_cpu_are_reproducible_with_auto_amp():
    """Three copies of one network, each given the same step on a 32^3 batch with ``amp="auto"``, end with
    identical weights (with bf16 on an avx512_bf16 CPU they never did, and now and then the loss was NaN)."""
    torch.manual_seed(0)
    net = build_model("resnet_unet", preset="tiny", in_channels=4, out_channels=4, deep_supervision=False)
    batches = [{"image": torch.rand(2, 4, 32, 32, 32), "label": torch.rand(2, 4, 32, 32, 32)} for _ in range(1)]
    finals = []
    for _ in range(3):
        model = copy.deepcopy(net)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for g in opt.param_groups:
            g["base_lr"] = 1e-3
        stats = train_one_epoch(model, batches, torch.nn.MSELoss(), opt,
                                EpochSettings(torch.device("cpu"), total_steps=10, amp="auto"), step=0)
        assert torch.isfinite(torch.tensor(stats.loss))
        finals.append(model.state_dict())
    for other in finals[1:]:
        assert all(torch.equal(finals[0][k], other[k]) for k in finals[0])
