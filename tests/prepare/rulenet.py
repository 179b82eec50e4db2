"""A deterministic "checkpoint" for tests: intensity rules as a torch module, run by the real Predictor.

It needs no training, so the native-space test compares the same network's output on the
untouched case and on its scanner-like copy in seconds. On real BraTS cases it segments
"somewhat" (WT Dice 0.3-0.95 against the expert labels, 0.95 on the case of test_simulated.py;
benchmarks/bench_prepare.py measures it on four)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brats_seg.config import PreprocessConfig
from brats_seg.inference.postprocess import PostprocessConfig
from brats_seg.inference.predictor import Member, Predictor

CHANNELS = ("t1n", "t1c", "t2w", "t2f")


class RuleNet(torch.nn.Module):
    """``(B, 4, H, W, D)`` z-scored t1n, t1c, t2w, t2f -> ``(B, 3, H, W, D)`` region logits:
    WT where FLAIR's local mean (5 voxels) is ``wt_sd`` SD above the brain's, TC where T1c's
    local mean is 1 SD above too, ET where T1c itself is 2 SD above."""

    size_divisor = 1

    def __init__(self, wt_sd: float = 1.0):
        super().__init__()
        self.wt_sd = wt_sd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = F.avg_pool3d(x, 5, 1, 2, count_include_pad=False)
        wt = local[:, 3] - self.wt_sd
        tc = torch.minimum(wt, local[:, 1] - 1.0)
        et = torch.minimum(tc, x[:, 1] - 2.0)
        return 8.0 * torch.stack([wt, tc, et], 1)


def rule_predictor(spacing: float = 2.0, wt_sd: float = 1.0, min_component: int = 0) -> Predictor:
    """The rule network as a one-member Predictor (z-score, crop, ``spacing`` mm, 64^3 windows;
    whole-tumour components under ``min_component`` voxels removed)."""
    member = Member(RuleNet(wt_sd).eval(), CHANNELS, PreprocessConfig(spacing=(spacing,) * 3), (64, 64, 64),
                    label_scheme="brats2021", name="rulenet")
    return Predictor.from_members([member], device="cpu", postprocess=PostprocessConfig(0.5, min_component))
