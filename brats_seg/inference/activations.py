"""How a network's outputs become the probabilities of its output groups ``(B, G, *S)``.

Region-trained networks (sigmoid, the default) output one logit per nested region.
Label-trained networks (softmax) output four class logits: background, edema
(WT\\TC), core (TC\\ET) and enhancing tumor; their region probabilities are sums of
class probabilities. Label outputs (:mod:`brats_seg.outputs`, ``kind="labels"``) keep their softmax
(``softmax_labels``). The checkpoint names the activation (``provenance.output_activation``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import CheckpointError


def sigmoid_regions(logits: torch.Tensor) -> torch.Tensor:
    """Region logits ``(B, 3, *S)`` -> probabilities ``(B, 3, *S)``."""
    return torch.sigmoid(logits.float())


def softmax_to_regions(logits: torch.Tensor) -> torch.Tensor:
    """Class logits ``(B, 4, *S)`` -> region probabilities ``(B, 3, *S)``: WT = 1-p0, TC = p2+p3, ET = p3."""
    p = torch.softmax(logits.float(), dim=1)
    return torch.stack([1 - p[:, 0], p[:, 2] + p[:, 3], p[:, 3]], dim=1)


def softmax_labels(logits: torch.Tensor) -> torch.Tensor:
    """Label logits ``(B, K, *S)`` -> label probabilities ``(B, K, *S)`` (label outputs, written back by argmax)."""
    return torch.softmax(logits.float(), dim=1)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": sigmoid_regions,
    "softmax": softmax_to_regions,
    "softmax_labels": softmax_labels,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The logits -> region probabilities function called ``name``."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise CheckpointError(f"unknown output activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None
