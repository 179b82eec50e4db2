"""How a :class:`~.predictor.Predictor` predicts: :class:`PredictorConfig` (one frozen dataclass)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..config import DEFAULT_OVERLAP
from ..errors import BratsSegError
from .postprocess import PostprocessConfig


@dataclass(frozen=True)
class PredictorConfig:
    """Every setting of a :class:`~.predictor.Predictor` but its checkpoints.

    ``device``: default CUDA if available. ``overlap``: sliding-window overlap.
    ``tta``: number of mirror combinations (0 or 1 off, 8 all). ``batch_size``: windows per forward pass.
    ``weights``: per-checkpoint ensemble weights (default equal). ``backend``: ``torch``, ``onnx`` (ONNX Runtime)
    or ``openvino`` (:mod:`.backends`; the last two on the CPU). ``precision``: ``auto`` (bf16
    on CUDA, fp32 elsewhere), ``fp32`` or ``bf16``. ``compile``: ``torch.compile`` each
    network. ``postprocess``: a :class:`PostprocessConfig`; or ``None`` (the rule the checkpoints record,
    e.g. ``--recipe cpu``'s, else none) or a mapping of the fields to change in it
    (:func:`.postprocess.resolve_postprocess`). ``uncertainty``: None, "variance" (across members x mirrors)
    or "entropy" (of the averaged probability). ``label_scheme``: of the output labels (default: the
    case's, else the checkpoint's). ``window``: override the checkpoint's patch size.
    ``channels_last``: torch back-end in ``channels_last_3d`` (faster 3-D convolutions with
    cuDNN and with oneDNN on CPU: about 1.4x for SegResNet on 2 CPU cores). ``warn``: print
    the one-line notes and warnings about the checkpoints (to stderr). ``zero_fill``: run
    members on a sequence subset they were not trained for, the missing channels filled (the
    papers' zero-filled baseline) instead of leaving them out (:mod:`.missing_sequences`).
    """

    device: str | torch.device | None = None
    overlap: float = DEFAULT_OVERLAP
    tta: int = 0
    batch_size: int = 4
    weights: Sequence[float] | None = None
    backend: str = "torch"
    precision: str = "auto"
    compile: bool = False
    postprocess: PostprocessConfig | Mapping[str, Any] | None = None
    uncertainty: str | None = None
    label_scheme: str | None = None
    window: Sequence[int] | None = None
    channels_last: bool = True
    warn: bool = True
    zero_fill: bool = False


def predictor_config(config: PredictorConfig | None = None, **changes: Any) -> PredictorConfig:
    """``config`` (default :class:`PredictorConfig`) with the named fields changed; an unknown name is a
    :class:`BratsSegError` listing the valid ones."""
    names = {f.name for f in dataclasses.fields(PredictorConfig)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise BratsSegError(f"unknown predictor setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return dataclasses.replace(config or PredictorConfig(), **changes)
