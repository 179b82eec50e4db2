"""Sliding-window inference: run a network on overlapping windows, blend with Gaussian weights.

Our own engine, built for speed on whole BraTS volumes (the recipe of nnU-Net,
Isensee et al. 2021, and MONAI's ``sliding_window_inference`` gaussian mode):

* window starts are evenly spaced with at least the requested overlap, the
  first at 0 and the last ending exactly at the border (no window hangs over
  the edge, so no window is wasted on padding);
* every window's output is weighted by a Gaussian importance map
  (sigma = window/8 per axis), and the weighted sum and the weight map are both
  accumulated in place on the device; the result is their ratio;
* several windows run per forward call, gathered into one preallocated
  buffer (no per-window allocation);
* a volume smaller than the window along an axis is zero-padded to the window
  and cropped back;
* windows whose input is entirely zero (background outside the brain) are not
  run: a deterministic network maps the all-zero window to the same output
  every time, so that output is computed once and reused. This is exact (up
  to the usual float non-associativity of batched kernels), not an
  approximation, for any network whose output for one sample does not depend
  on the others in the batch (true in eval mode: batch-norm uses running
  statistics, instance-norm is per sample);
* optional bf16 autocast and ``channels_last_3d`` (both meant for CUDA);
  everything runs under ``torch.inference_mode``.

The predictor crops each scan to the brain's bounding box before calling
this, which is where most of the speed over MONAI's recipe comes from.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DEFAULT_OVERLAP

Network = Callable[[torch.Tensor], torch.Tensor]

SIGMA_SCALE = 0.125
"""Gaussian sigma as a fraction of the window side (nnU-Net and MONAI's default)."""


# --------------------------------------------------------------------------- window geometry

def _round_half_even(num: int, den: int) -> int:
    """``round(num / den)`` with exact integer arithmetic (ties to even, symmetric about 0)."""
    q, r = divmod(num, den)
    twice = 2 * r
    return q + (twice > den or (twice == den and q % 2 == 1))


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start indices of the windows along one axis of length ``size`` (>= ``window``).

    The number of windows is the smallest that keeps the step at most
    ``window * (1 - overlap)``; starts are evenly spaced from 0 to ``size - window``
    and rounded symmetrically, so mirroring the axis mirrors the set of windows
    (which keeps test-time mirroring exact for equivariant networks).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if size <= window:
        return [0]
    step = max(1, int(window * (1.0 - overlap)))
    span = size - window
    n = -(-span // step) + 1  # ceil(span / step) + 1
    return [_round_half_even(i * span, n - 1) for i in range(n)]


def window_slices(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[slice, ...]]:
    """All windows over a spatial ``shape`` as tuples of slices (C-order over the axes)."""
    starts = [window_starts(s, w, overlap) for s, w in zip(shape, window)]
    return [tuple(slice(a, a + w) for a, w in zip(pos, window)) for pos in itertools.product(*starts)]


@functools.lru_cache(maxsize=16)
def _gaussian_cached(window: tuple[int, ...], device: str, sigma_scale: float) -> torch.Tensor:
    axes = []
    for w in window:
        x = torch.arange(w, dtype=torch.float64) - (w - 1) / 2.0  # centred: symmetric under flips
        axes.append(torch.exp(-0.5 * (x / (w * sigma_scale)) ** 2))
    g = functools.reduce(lambda a, b: a[..., None] * b, axes)
    g = (g / g.max()).float()
    g = g.clamp_min(g[g > 0].min())  # never a zero weight (nnU-Net does the same)
    return g.to(device)


def gaussian_importance(window: Sequence[int], device: str | torch.device = "cpu",
                        sigma_scale: float = SIGMA_SCALE) -> torch.Tensor:
    """Separable Gaussian importance map ``window`` shaped, max 1, float32; cached per size/device.

    Do not modify the returned tensor in place (it is shared).
    """
    return _gaussian_cached(tuple(int(w) for w in window), str(torch.device(device)), float(sigma_scale))


@functools.lru_cache(maxsize=16)
def _nnunet_cached(window: tuple[int, ...], device: str) -> torch.Tensor:
    from scipy.ndimage import gaussian_filter

    delta = np.zeros(window)
    delta[tuple(w // 2 for w in window)] = 1  # nnU-Net's centre: w // 2, half a voxel off for even sides
    g = gaussian_filter(delta, [w * SIGMA_SCALE for w in window], 0, mode="constant", cval=0)
    g = torch.from_numpy(g / g.max()).float()
    g = g.clamp_min(g[g > 0].min())
    return g.to(device)


def nnunet_importance(window: Sequence[int], device: str | torch.device = "cpu") -> torch.Tensor:
    """nnU-Net v2's importance map (``compute_gaussian``): a unit impulse at ``w // 2`` blurred by
    ``scipy.ndimage.gaussian_filter`` (sigma = window/8, truncated at 4 sigma), max 1, zeros raised to
    the smallest positive weight; float32 (nnU-Net keeps it in float16). Cached; do not modify."""
    return _nnunet_cached(tuple(int(w) for w in window), str(torch.device(device)))


def constant_importance(window: Sequence[int], device: str | torch.device = "cpu") -> torch.Tensor:
    """Equal weights (MONAI's ``mode="constant"``, the default of bundles' SlidingWindowInferer)."""
    return torch.ones(tuple(int(w) for w in window), device=device)


WINDOW_WEIGHTS = {"gaussian": gaussian_importance, "nnunet": nnunet_importance, "constant": constant_importance}
"""Importance maps by name: ours (centred, continuous), nnU-Net's (imported nnU-Net models), constant."""


def _pad_to_window(image: torch.Tensor, window: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad spatial axes shorter than the window (evenly on both sides).

    Returns the padded image and the slices that crop the original back out.
    """
    spatial = image.shape[2:]
    lo = [max(w - s, 0) // 2 for s, w in zip(spatial, window)]
    hi = [max(w - s, 0) - a for s, w, a in zip(spatial, window, lo)]
    if not any(lo) and not any(hi):
        return image, tuple(slice(None) for _ in spatial)
    pads = [p for a, b in zip(reversed(lo), reversed(hi)) for p in (a, b)]  # F.pad order: last axis first
    crop = tuple(slice(a, a + s) for a, s in zip(lo, spatial))
    return F.pad(image, pads), crop


def _nonempty_windows(image: torch.Tensor, slices: list[tuple[slice, ...]]) -> list[bool]:
    """Which windows contain a nonzero input voxel (any batch item, any channel).

    One summed-volume table (3-D prefix sums) answers every window with eight
    lookups, in one pass and one device-to-host transfer.
    """
    occupied = (image != 0).any(dim=1).any(dim=0).to(torch.int32)  # (H, W, D)
    table = F.pad(occupied.cumsum(0).cumsum(1).cumsum(2), (1, 0, 1, 0, 1, 0))
    lo = torch.tensor([[s.start for s in sl] for sl in slices], device=table.device)
    hi = torch.tensor([[s.stop for s in sl] for sl in slices], device=table.device)
    total = torch.zeros(len(slices), dtype=table.dtype, device=table.device)
    for corner in itertools.product((0, 1), repeat=3):
        idx = [hi[:, k] if c else lo[:, k] for k, c in enumerate(corner)]
        total += (-1) ** (3 - sum(corner)) * table[idx[0], idx[1], idx[2]]
    return (total > 0).tolist()


# --------------------------------------------------------------------------- the engine

def _forward(network: Network, batch: torch.Tensor, amp: bool) -> torch.Tensor:
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=amp):
        out = network(batch)
    if isinstance(out, (list, tuple)):  # deep supervision: full resolution first
        out = out[0]
    return out.float()


def sliding_window(
    image: torch.Tensor,
    network: Network,
    window: Sequence[int],
    overlap: float = DEFAULT_OVERLAP,
    batch_size: int = 4,
    *,
    amp: bool = False,
    channels_last: bool = False,
    skip_empty: bool = True,
    weights: str = "gaussian",
    empty_network: Network | None = None,
) -> torch.Tensor:
    """Blend a network's outputs over overlapping windows.

    ``image``: ``(B, C, H, W, D)``; ``network``: ``(n, C, *window) -> (n, K, *window)``
    (a list/tuple output counts by its first element). Returns ``(B, K, H, W, D)`` float32
    on ``image``'s device: sum over windows of output * gaussian, divided by the sum of
    gaussians. ``amp``: bf16 autocast; ``channels_last``: feed windows as
    ``channels_last_3d``; ``skip_empty``: reuse one computed output for all-zero windows;
    ``weights``: the importance map, a key of :data:`WINDOW_WEIGHTS`; ``empty_network``: what computes
    the all-zero window's output (default ``network``). Instance normalization of a constant window is
    ill-conditioned: OpenVINO's answer there differs from PyTorch's by up to the logits' own size, so the
    predictor gives the torch module for it.
    """
    if image.ndim != 5:
        raise ValueError(f"expected image (B, C, H, W, D), got shape {tuple(image.shape)}")
    window = tuple(int(w) for w in window)
    with torch.inference_mode():
        padded, crop = _pad_to_window(image, window)
        slices = window_slices(padded.shape[2:], window, overlap)
        weight = WINDOW_WEIGHTS[weights](window, padded.device)
        jobs = [(b, sl) for b in range(padded.shape[0]) for sl in slices]
        if skip_empty:
            busy = [f for b in range(padded.shape[0]) for f in _nonempty_windows(padded[b:b + 1], slices)]
        else:
            busy = [True] * len(jobs)
        run = [j for j, f in zip(jobs, busy) if f]
        empty = [j for j, f in zip(jobs, busy) if not f]
        total = _accumulate(padded, (network, empty_network or network), window, run, empty, weight, batch_size,
                            amp, channels_last)
        norm = torch.zeros(padded.shape[2:], device=padded.device)
        for sl in slices:
            norm[sl].add_(weight)
        total.div_(norm)
        return total[(slice(None), slice(None), *crop)]


def _accumulate(padded: torch.Tensor, networks: tuple[Network, Network], window: tuple[int, ...], run: list,
                empty: list, weight: torch.Tensor, batch_size: int, amp: bool, channels_last: bool) -> torch.Tensor:
    """Sum of ``output * weight`` over all windows, ``(B, K, *spatial)`` float32; ``networks``: for the
    windows run, and for the all-zero window.

    ``run``: (batch index, slices) of the windows to compute, ``batch_size`` per forward call,
    gathered into one reused buffer; ``empty``: all-zero windows, which all receive the
    output of one all-zero window.
    """
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    buf = torch.empty((max(1, min(batch_size, len(run))), padded.shape[1], *window), device=padded.device,
                      dtype=padded.dtype).to(memory_format=fmt)
    total = None

    def target(b: int, sl: tuple[slice, ...]) -> torch.Tensor:
        return total[(b, slice(None), *sl)]

    def allocate(k: int) -> torch.Tensor:
        return torch.zeros((padded.shape[0], k, *padded.shape[2:]), device=padded.device, dtype=torch.float32)

    for start in range(0, len(run), batch_size):
        chunk = run[start:start + batch_size]
        for k, (b, sl) in enumerate(chunk):
            buf[k].copy_(padded[(b, slice(None), *sl)])
        out = _forward(networks[0], buf[:len(chunk)], amp)
        if total is None:
            total = allocate(out.shape[1])
        for k, (b, sl) in enumerate(chunk):
            target(b, sl).addcmul_(out[k], weight)
    if empty:
        zero_out = _forward(networks[1], torch.zeros_like(buf[:1]), amp)[0] * weight
        if total is None:
            total = allocate(zero_out.shape[0])
        for b, sl in empty:
            target(b, sl).add_(zero_out)
    return total
