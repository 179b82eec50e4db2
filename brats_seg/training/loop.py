"""The plain functions the trainer coordinates: mixed precision, one training epoch, validation.

Nothing here knows about run folders or checkpoints (see :mod:`brats_seg.training.trainer`);
the learning-rate schedules live in :mod:`brats_seg.training.schedule`. Validation uses the
package's own sliding window (:mod:`brats_seg.inference.sliding_window`, as prediction does)
and Dice (:mod:`brats_seg.evaluation.metrics`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_OVERLAP
from ..conventions import REGIONS
from ..evaluation.metrics import dice
from ..inference.activations import get_activation
from ..inference.sliding_window import sliding_window
from .schedule import lr_factor, set_lr


def autocast(device: torch.device, amp: str):
    """Mixed precision. ``auto``: bf16 on CUDA, fp32 elsewhere; ``bf16``; ``fp16`` (CUDA, with a GradScaler);
    ``none``.

    ``auto`` never picks bf16 on a CPU, even one with native bf16 (AVX512-BF16/AMX): with torch 2.13
    (oneDNN 3.12, ``jit_bf16:avx512_core_bf16``) the weight gradient of a bf16 3-D convolution whose
    input depth is smaller than its kernel (a 2-voxel-deep map under a 3x3x3 kernel: the deepest level
    of a U-Net on 32^3 patches, or of 64^3 at stride 32) is read from uninitialized memory: wrong by
    up to 1e37, different on every call, NaN now and then (``tests/training/test_cpu_precision.py``).
    An explicit ``bf16`` on a CPU is the caller's choice.
    """
    if amp == "none" or (device.type != "cuda" and amp in ("fp16", "auto")):
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16 if amp == "fp16" else torch.bfloat16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


# --------------------------------------------------------------------------- training


@dataclass
class EpochStats:
    loss: float
    seconds: float
    data_wait: float
    """Share of the epoch's wall time spent waiting for the next batch."""
    steps: int


@dataclass(frozen=True)
class EpochSettings:
    """How :func:`train_one_epoch` trains (the same for every epoch of a run, except ``frozen``).

    The learning-rate factor of each step is ``lr_at(global step)`` if given, else
    :func:`~brats_seg.training.schedule.lr_factor` over ``total_steps`` with ``schedule`` and
    ``warmup_steps``. ``amp``: see :func:`autocast`. ``grad_clip``: gradient norm limit (None: none).
    Gradients of ``frozen`` parameters are dropped before the update, so those weights stay exactly as
    they are; ``frozen_norms`` (batch norms of a frozen encoder) stay in eval mode so their statistics stay too.
    """

    device: torch.device
    total_steps: int = 0
    schedule: str = "poly"
    warmup_steps: int = 0
    lr_at: Callable[[int], float] | None = None
    amp: str = "auto"
    grad_clip: float | None = 12.0
    frozen: Sequence[nn.Parameter] = ()
    frozen_norms: Sequence[nn.Module] = ()


def train_one_epoch(model: nn.Module, batches: Iterable[dict], loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    settings: EpochSettings, *, step: int, scaler: torch.amp.GradScaler | None = None,
                    stop: Callable[[], bool] | None = None,
                    progress: Callable[[float], None] | None = None) -> EpochStats:
    """One pass over ``batches`` (``{"image": (B,C,*P), "label": (B,G,*P)}``, optionally ``"known": (B,G)``
    bool, the groups each sample labels) as ``settings`` say; returns the mean loss.

    ``step`` is the global optimizer step at the start. ``scaler``: the fp16 gradient scaler. ``stop()`` is
    asked after every step; True ends the epoch there (a time budget that is spent). ``progress(loss)``
    is called after every step.
    """
    device, amp, grad_clip, frozen = settings.device, settings.amp, settings.grad_clip, settings.frozen
    lr_at = settings.lr_at
    if lr_at is None:
        def lr_at(s: int) -> float:
            return lr_factor(s, settings.total_steps, schedule=settings.schedule, warmup=settings.warmup_steps)

    model.train()
    for m in settings.frozen_norms:
        m.eval()
    losses, wait, n = [], 0.0, 0
    t0 = t_data = time.perf_counter()
    for batch in batches:
        wait += time.perf_counter() - t_data
        image = batch["image"].to(device, non_blocking=True)
        target = batch["label"].to(device, non_blocking=True)
        known = batch["known"].to(device) if "known" in batch else None
        set_lr(optimizer, lr_at(step + n))
        optimizer.zero_grad(set_to_none=True)
        loss = _forward_loss(model, image, target, loss_fn, device, amp, known)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step + n}; lower --lr")
        _update(loss, optimizer, scaler, grad_clip, frozen)
        losses.append(float(loss.detach()))
        n += 1
        if progress is not None:
            progress(losses[-1])
        if stop is not None and stop():
            break
        t_data = time.perf_counter()
    seconds = time.perf_counter() - t0
    return EpochStats(float(np.mean(losses)) if losses else float("nan"), seconds, wait / max(seconds, 1e-9), n)


def _forward_loss(model: nn.Module, image: torch.Tensor, target: torch.Tensor, loss_fn: nn.Module,
                  device: torch.device, amp: str, known: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss of one batch under autocast, plus the model's ``aux_loss`` if it has one (VAE);
    ``known`` ``(B, G)``: the groups each sample's scheme expresses (None: all)."""
    with autocast(device, amp):
        loss = loss_fn(model(image), target) if known is None else loss_fn(model(image), target, known)
        aux = getattr(getattr(model, "module", model), "aux_loss", None)
        return loss if aux is None else loss + aux


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
            grad_clip: float | None, frozen: Sequence[nn.Parameter]) -> None:
    """Backward and one optimizer step: gradients of ``frozen`` dropped, norm clipped to ``grad_clip``."""
    scaled = scaler is not None and scaler.is_enabled()
    if scaled:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    for p in frozen:
        p.grad = None
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]
                                        if p.grad is not None], grad_clip)
    if scaled:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


# --------------------------------------------------------------------------- validation


def region_probabilities(model: nn.Module, image: torch.Tensor, *, activation: str = "sigmoid",
                         window: Sequence[int], overlap: float = DEFAULT_OVERLAP, amp: str = "auto") -> torch.Tensor:
    """Whole-volume group probabilities ``(B, G, H, W, D)`` for ``image`` ``(B, C, H, W, D)``."""
    device = next(model.parameters()).device

    def network(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            out = model(x.to(device))
        return out.float()

    with torch.no_grad():
        logits = sliding_window(image.to(device), network, list(window), overlap=overlap, batch_size=2)
    return get_activation(activation)(logits)


def validate(model: nn.Module, cases: Iterable[tuple], *, window: Sequence[int], activation: str = "sigmoid",
             overlap: float = DEFAULT_OVERLAP, amp: str = "auto", groups: Sequence[str] = REGIONS,
             argmax: bool = False) -> dict[str, float]:
    """Dice per output group (and their mean) over whole validation cases.

    ``cases`` yields ``(case, masks)`` or ``(case, masks, known)`` as
    :func:`brats_seg.data.loaders.iter_validation_cases` does (``case.image`` (C, h, w, d); ``masks``
    (G, h, w, d) bool of ``groups``; ``known`` (G,) bool: groups the case's scheme expresses, the
    others left out of its scores). Returns ``{"WT": ..., "TC": ..., "ET": ..., "mean": ...}``
    averaged over cases (a group no case labels: NaN, left out of the mean). ``argmax``: softmax label
    outputs, the masks one per class (background first): the prediction is the argmax, background not scored.
    """
    net = getattr(model, "module", model)
    was_training = net.training
    net.eval()
    scores: dict[str, list[float]] = {r: [] for r in groups}
    if argmax:
        scores.pop(groups[0])
    try:
        for case, masks, *rest in cases:
            known = rest[0] if rest else np.ones(len(groups), bool)
            image = torch.from_numpy(np.array(case.image, dtype=np.float32))[None]
            probs = region_probabilities(net, image, activation=activation, window=window, overlap=overlap, amp=amp)
            pred = (probs[0] > 0.5).cpu().numpy()
            if argmax:
                k = probs.shape[1]
                pred = (probs[0].argmax(0)[None] == torch.arange(k, device=probs.device)[:, None, None, None])
                pred = pred.cpu().numpy()
                known = np.array([False, *known[1:]])  # background is not scored
            for i, r in enumerate(groups):
                if known[i]:
                    scores[r].append(float(dice(pred[i], masks[i])))
    finally:
        net.train(was_training)
    result = {r: float(np.mean(v)) if v else float("nan") for r, v in scores.items()}
    scored = [result[r] for r in scores if scores[r]]
    result["mean"] = float(np.mean(scored)) if scored else float("nan")
    return result
