"""MONAI returns ``MetaTensor``s; patches need plain ``torch.Tensor``s: :func:`plain_tensor`."""

from __future__ import annotations

import torch


def plain_tensor(x) -> torch.Tensor:
    """Drop MONAI's MetaTensor wrapper (its metadata is not needed for patches)."""
    if hasattr(x, "as_tensor"):
        return x.as_tensor()
    return torch.as_tensor(x)
