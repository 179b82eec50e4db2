"""README "Training notes": `--amp auto` trains in fp32 on a CPU (no bf16 autocast, even where the CPU has native
bf16); `--amp bf16` is the user's explicit choice. Through `brats-seg train`, watching every autocast entered."""

from __future__ import annotations

import torch

from brats_seg.cli import main

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "1",
        "--epochs", "1", "--folds", "1", "--workers", "0", "--threads", "1", "--no-progress", "--device", "cpu"]


def test_amp_auto_is_fp32_on_the_cpu(brats2021_case, tmp_path, monkeypatch):
    entered = []
    real = torch.autocast

    def spy(device_type, *args, **kwargs):
        entered.append((device_type, kwargs.get("dtype"), kwargs.get("enabled", True)))
        return real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "auto"), *TINY, "--amp", "auto"]) == 0
    assert not [e for e in entered if e[0] == "cpu" and e[2]], entered
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "bf16"), *TINY, "--amp", "bf16"]) == 0
    assert ("cpu", torch.bfloat16, True) in entered  # the explicit choice is honoured (and the spy sees it)
