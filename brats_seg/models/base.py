"""The interface every registered network shares.

A :class:`SegmentationNet` maps ``(B, C, H, W, D)`` inputs to ``(B, 3, H, W, D)``
region logits (WT, TC, ET; sigmoid outputs). In train mode with
``deep_supervision=True`` it returns a list of logits, full resolution first, then
the lower resolutions (``(B, 3, H/2, W/2, D/2)``, ...). Attributes:

``size_divisor``
    every spatial side of the input must be a multiple of it; :meth:`check_input`
    raises :class:`InputSizeError` early (before any convolution runs) otherwise.
``encoder_prefixes``
    state-dict key prefixes of the encoder (for transfer learning and freezing).
``aux_loss``
    ``None``, or a scalar tensor set by a train-mode forward of a network with an
    auxiliary objective (SegResNet's VAE branch); trainers add it to the loss.

:func:`init_weights` applies a named weight initialisation (``he``: nnU-Net's).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import BratsSegError, ConfigError


class InputSizeError(BratsSegError, ValueError):
    """The input's shape does not fit the network (wrong rank, channels or side lengths)."""


def round_up(n: int, m: int) -> int:
    """The smallest positive multiple of ``m`` that is at least ``n`` (``m`` itself for ``n`` <= 0)."""
    return max(m, -(-int(n) // m) * m)


class SegmentationNet(nn.Module):
    """Base class: input checks and the deep-supervision output convention."""

    size_divisor: int = 1
    encoder_prefixes: tuple[str, ...] = ()
    in_channels: int = 4
    out_channels: int = 3
    deep_supervision: bool = False
    fixed_input_size: tuple[int, ...] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.aux_loss: torch.Tensor | None = None

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputSizeError` unless ``x`` is ``(B, in_channels, H, W, D)`` with fitting sides."""
        name = getattr(self, "registry_name", type(self).__name__)
        if x.ndim != 5:
            raise InputSizeError(f"{name}: expected a 5-D input (B, C, H, W, D), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise InputSizeError(f"{name}: expected {self.in_channels} input channels, got {x.shape[1]}"
                                 f" (input shape {tuple(x.shape)})")
        sides = tuple(int(s) for s in x.shape[2:])
        if self.fixed_input_size is not None and sides != tuple(self.fixed_input_size):
            want = "x".join(map(str, self.fixed_input_size))
            raise InputSizeError(f"{name}: this network was built for inputs of exactly {want}"
                                 f" (input_image_size), got {'x'.join(map(str, sides))}")
        d = self.size_divisor
        if any(s % d for s in sides):
            fit = "x".join(str(round_up(s, d)) for s in sides)
            raise InputSizeError(f"{name}: input sides must be multiples of {d}, got {'x'.join(map(str, sides))};"
                                 f" pad or crop to e.g. {fit}")

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``(B, C, H, W, D)`` -> logits ``(B, 3, H, W, D)`` (or the deep-supervision list in train mode)."""
        self.check_input(x)
        self.aux_loss = None
        outputs = self.forward_outputs(x, all_heads=self.training and self.deep_supervision)
        if isinstance(outputs, torch.Tensor):
            return outputs
        return list(outputs) if self.training and self.deep_supervision else outputs[0]

    def forward_outputs(self, x: torch.Tensor, all_heads: bool) -> torch.Tensor | list[torch.Tensor]:
        """The network proper: a tensor, or a list of logits (full resolution first)."""
        raise NotImplementedError


def he_init(model: nn.Module, negative_slope: float = 1e-2) -> None:
    """nnU-Net's ``InitWeights_He(1e-2)``: every (transposed) convolution's weight drawn by
    ``kaiming_normal_(a=negative_slope)`` (fan-in, leaky ReLU gain), its bias set to 0; other layers untouched."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(m.weight, a=negative_slope)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


WEIGHT_INITS: dict[str, Callable[[nn.Module], None]] = {"default": lambda model: None, "he": he_init}
"""Weight initialisation name -> function(model): ``default`` keeps PyTorch's (and MONAI's) own,
``he`` is nnU-Net's (Isensee et al. 2021)."""


def init_weights(model: nn.Module, name: str) -> nn.Module:
    """Apply the weight initialisation ``name`` (:data:`WEIGHT_INITS`) to ``model`` in place; returns it."""
    if name not in WEIGHT_INITS:
        raise ConfigError(f"unknown weight initialisation {name!r}; valid: {', '.join(WEIGHT_INITS)}")
    WEIGHT_INITS[name](model)
    return model
