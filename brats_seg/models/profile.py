"""Size and cost of a registered model without running it: parameters and GFLOPs per patch.

The network is built on PyTorch's ``meta`` device (no memory, no arithmetic) and one
forward pass is traced under ``torch.utils.flop_counter.FlopCounterMode``, which counts
the FLOPs of convolutions and matrix products from shapes alone (2 FLOPs per
multiply-add; normalizations and activations are not counted). A base-preset model at
``4 x 128^3`` takes a fraction of a second this way instead of minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from .registry import build_model, count_parameters, model_info


def profile_model(name: str, *, preset: str = "base", patch: Sequence[int] = (128, 128, 128), in_channels: int = 4,
                  **kwargs: Any) -> dict[str, Any]:
    """``{"name", "parameters", "gflops", "patch", "size_divisor", "deep_supervision", "description", "paper"}``.

    ``gflops``: 1e9 FLOPs of one eval-mode forward pass on ``(1, in_channels, *patch)``.
    """
    info = model_info(name)
    with torch.device("meta"):  # deep_supervision=True only to learn whether the model has the heads
        has_ds = build_model(name, in_channels=in_channels, preset=preset, deep_supervision=True,
                             **kwargs).deep_supervision
        model = build_model(name, in_channels=in_channels, preset=preset, **kwargs).eval()
    x = torch.empty(1, in_channels, *patch, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return {"name": name, "parameters": count_parameters(model), "gflops": counter.get_total_flops() / 1e9,
            "patch": [int(p) for p in patch], "size_divisor": int(model.size_divisor),
            "deep_supervision": bool(has_ds), "description": info.description, "paper": info.paper}
