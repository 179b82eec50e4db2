"""The candidate convolutions of V-NAS (Zhu et al. 2019, arXiv:1906.02817) and the mixed operation.

Every searchable convolution layer chooses among three operations on ``(B, C, H, W, D)``
tensors, with D the third (through-plane) axis:

``conv3d``  3x3x3 convolution
``conv2d``  3x3x1 convolution: in-plane only, each slice on its own
``p3d``     pseudo-3-D: 3x3x1 then 1x1x3 (Qiu et al. 2017), no normalization between

:class:`MixedConv` is the continuous relaxation (DARTS, Liu et al. 2019): a weighted sum of
all candidates. It is a pure function of its input and the weights it is given,
``forward(x, weights)``, as MONAI DiNTS' mixed operation is: the architecture parameters live
in the search network and travel as an argument, never as state of the layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..blocks import conv3d

OP_NAMES: tuple[str, ...] = ("conv3d", "conv2d", "p3d")
"""Candidate operations, in the column order of the architecture weights."""


def _p3d(cin: int, cout: int, stride: int) -> nn.Module:
    return nn.Sequential(conv3d(cin, cout, (3, 3, 1), stride, bias=False), conv3d(cout, cout, (1, 1, 3), 1, bias=False))


OPS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "conv3d": lambda cin, cout, stride: conv3d(cin, cout, 3, stride, bias=False),
    "conv2d": lambda cin, cout, stride: conv3d(cin, cout, (3, 3, 1), stride, bias=False),
    "p3d": _p3d,
}
"""Op name -> factory(cin, cout, stride): ``(B, cin, ...)`` -> ``(B, cout, .../stride)``, 'same' padding."""
assert tuple(OPS) == OP_NAMES


def make_op(op: str, cin: int, cout: int, stride: int = 1) -> nn.Module:
    """The convolution named ``op`` (one of :data:`OP_NAMES`)."""
    return OPS[op](cin, cout, stride)


class MixedConv(nn.Module):
    """``sum_k weights[k] * op_k(x)`` over every candidate of :data:`OP_NAMES`.

    ``forward(x (B, cin, H, W, D), weights (n_ops,))`` -> ``(B, cout, H/s, W/s, D/s)``.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(make_op(op, cin, cout, stride) for op in OP_NAMES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if weights.shape != (len(self.candidates),):
            raise ValueError(f"MixedConv needs one weight per op ({len(self.candidates)}), got {tuple(weights.shape)}")
        return sum(w * op(x) for w, op in zip(weights, self.candidates))
