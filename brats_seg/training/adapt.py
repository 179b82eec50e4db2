"""Label-free adaptation of a trained network to a new site's unlabelled scans: TENT.

TENT (Wang et al., "Tent: Fully Test-Time Adaptation by Entropy Minimization", ICLR 2021) updates
only the normalization layers' affine parameters (scale and shift), every other weight frozen,
to minimize the entropy of the network's predictions on the new data, with the normalization
statistics taken from the new data itself (batch norms in training mode; instance and group
norms always compute them per sample). What differs here, and why:

* entropy of a region-based (sigmoid) network is the mean binary entropy of its outputs (WT,
  TC, ET are not exclusive); a softmax network (``dice_ce``) gets TENT's Shannon entropy;
* it runs offline over random patches of the unlabelled cases for ``steps`` Adam steps (TENT
  adapts online, one update per test batch) and writes a new checkpoint, so the adapted model is
  a file that predicts like any other.

The new checkpoint is the source's with new affine parameters and ``provenance["adaptation"]``:
method, source file, data, cases, steps, learning rate, parameters adapted, and the mean entropy
on the adaptation patches before and after. Its ``intensity_range`` spans the source's training
cases and the adaptation cases (the model has now seen both).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import (
    intensity_range_of,
    load_checkpoint,
    model_from_checkpoint,
    preprocessing_of,
    save_checkpoint,
    spacing_of,
)
from ..data.preprocessing.preprocess import preprocess_volumes
from ..data.reading.intensity import training_range
from ..data.reading.layouts import discover_cases
from ..data.reading.volumes import load_case
from ..errors import BratsSegError
from ..inference.activations import get_activation

METHODS = ("tent",)

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class AdaptConfig:
    """``steps`` Adam steps at ``lr`` on ``batch_size`` random patches (the checkpoint's patch size unless
    ``patch``), seeded by ``seed``."""

    method: str = "tent"
    steps: int = 50
    lr: float = 1e-3
    batch_size: int = 2
    patch: tuple[int, int, int] | None = None
    seed: int = 0
    device: str = "cpu"


def norm_affine_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The scale and shift of every normalization layer (what TENT adapts); raises when there is none."""
    params = [p for m in model.modules() if isinstance(m, _NORMS) for p in (m.weight, m.bias) if p is not None]
    if not params:
        raise BratsSegError(f"{type(model).__name__} has no normalization layer with affine parameters; TENT"
                            " has nothing to adapt")
    return params


def entropy(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Mean entropy (nats) of ``(B, K, *S)`` outputs: Shannon over K for softmax, binary per output otherwise."""
    if activation == "softmax":
        logp = torch.log_softmax(logits, 1)
        return -(logp.exp() * logp).sum(1).mean()
    p = torch.sigmoid(logits)  # H = -p log p - (1 - p) log(1 - p), in a form stable for large |logits|
    f = nn.functional.softplus
    return (p * f(-logits) + (1 - p) * f(logits)).mean()


def _volumes(data: str | Path, ckpt: dict[str, Any]) -> tuple[list[np.ndarray], list[str], list[dict]]:
    """The unlabelled cases of ``data`` preprocessed as the checkpoint was trained (labels never read)."""
    cfg = preprocessing_of(ckpt)
    spacing = spacing_of(ckpt)
    cfg = dataclasses.replace(cfg, spacing=spacing) if spacing else cfg
    images, ids, stats = [], [], []
    for case in discover_cases(data):
        pre = preprocess_volumes(load_case(case, tuple(ckpt["channels"]), with_label=False), cfg)
        images.append(pre.image)
        ids.append(case.case_id)
        stats.append(pre.properties.get("intensity") or {})
    if not images:
        raise BratsSegError(f"{data}: no cases to adapt to")
    return images, ids, stats


def _patches(images: Sequence[np.ndarray], patch: Sequence[int], n: int, rng: np.random.Generator) -> torch.Tensor:
    """``(n, C, *patch)``: random crops (zero-padded where a case is smaller than the patch)."""
    out = np.zeros((n, images[0].shape[0], *patch), np.float32)
    for b in range(n):
        img = images[int(rng.integers(len(images)))]
        lo = [int(rng.integers(max(1, s - p + 1))) for s, p in zip(img.shape[1:], patch)]
        crop = img[(slice(None), *(slice(a, a + p) for a, p in zip(lo, patch)))]
        out[(b, slice(None), *(slice(0, s) for s in crop.shape[1:]))] = crop
    return torch.from_numpy(out)


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[0] if isinstance(out, (list, tuple)) else out  # deep supervision: the full-resolution output


def adapt(source: str | Path, data: str | Path, out: str | Path, cfg: AdaptConfig | None = None) -> dict[str, Any]:
    """Adapt the checkpoint ``source`` to the unlabelled cases under ``data`` and write ``out``; returns the record."""
    cfg = cfg or AdaptConfig()
    if cfg.method not in METHODS:
        raise BratsSegError(f"unknown adaptation method {cfg.method!r}; valid: {', '.join(METHODS)}")
    if cfg.steps < 1 or cfg.lr <= 0 or cfg.batch_size < 1:
        raise BratsSegError(f"adaptation needs steps >= 1, lr > 0 and batch size >= 1; got {cfg.steps}, {cfg.lr},"
                            f" {cfg.batch_size}")
    ckpt = load_checkpoint(source)
    model = model_from_checkpoint(ckpt).to(cfg.device)
    activation = str((ckpt.get("provenance") or {}).get("output_activation", "sigmoid"))
    get_activation(activation)
    images, ids, stats = _volumes(data, ckpt)
    params = norm_affine_parameters(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    model.train()  # batch norms: statistics of the new data (TENT); no dropout layers in our networks' eval paths
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    patch = tuple(cfg.patch or ckpt["patch_size"])
    history, t0 = [], time.perf_counter()
    for _ in range(cfg.steps):
        x = _patches(images, patch, cfg.batch_size, rng).to(cfg.device)
        loss = entropy(_forward(model, x), activation)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    record = {"method": cfg.method, "paper": "Wang et al., ICLR 2021 (TENT); offline, binary entropy for sigmoid"
              " outputs", "source": str(source), "data": str(data), "cases": ids, "steps": cfg.steps, "lr": cfg.lr,
              "optimizer": "adam", "batch_size": cfg.batch_size, "patch": list(patch), "seed": cfg.seed,
              "parameters": int(sum(p.numel() for p in params)), "entropy_first_step": history[0],
              "entropy_last_step": history[-1], "seconds": round(time.perf_counter() - t0, 2)}
    new = dict(ckpt)
    new.pop("training", None)
    new["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    new["provenance"] = {**(ckpt.get("provenance") or {}), "adaptation": record}
    own = intensity_range_of(ckpt)
    merged = training_range(stats) if own is None else _union(own, training_range(stats))
    if merged is not None:
        new["intensity_range"] = merged
    save_checkpoint(new, out)
    return record


def _union(a: dict[str, Any], b: dict[str, Any] | None) -> dict[str, Any]:
    """Two :func:`~brats_seg.data.reading.intensity.training_range` records as one (per statistic: min of mins,
    max of maxes)."""
    if b is None:
        return a
    out = {**a, "cases": int(a.get("cases", 0)) + int(b.get("cases", 0))}
    for channel, stats in a.items():
        if isinstance(stats, dict) and isinstance(b.get(channel), dict):
            out[channel] = {k: [min(v[0], b[channel][k][0]), max(v[1], b[channel][k][1])] for k, v in stats.items()}
    return out
