"""Export a checkpoint's network to TorchScript or ONNX, and check the export against PyTorch.

The exported graph maps ``(B, C, H, W, D)`` float32 (channels in the checkpoint's order,
preprocessed as the checkpoint says) to region logits ``(B, 3, H, W, D)``; apply a sigmoid
for WT/TC/ET probabilities. Tracing records one input shape: the export is checked at
that shape (``shape``, default the training patch), and the ONNX graph declares the batch
and spatial axes dynamic. Sliding windows of that size are the intended use.

Every export is verified: the exported model and the PyTorch model run on the same
random input and their largest absolute difference is returned (and must stay within
``tolerance``). ONNX uses the TorchScript-based exporter (``dynamo=False``) so no
extra package (onnxscript) is needed (:func:`.backends.onnx_model`, the graph the onnx and
openvino prediction back-ends run); it is checked with onnxruntime.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import BratsSegError, require
from ..files import atomic_path
from .backends import FirstOutput, onnx_model
from .members import load_model_source, network_of

FORMATS = ("torchscript", "onnx")


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(str(path))


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    path.write_bytes(onnx_model(model, example))


def _run_torchscript(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


def _run_onnx(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    ort = require("onnxruntime", "onnx", "checking the ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["logits"], {"image": x})[0]


EXPORTERS = {"torchscript": (_export_torchscript, _run_torchscript), "onnx": (_export_onnx, _run_onnx)}


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path, *, shape: Sequence[int] | None = None,
                      tolerance: float = 1e-3) -> float:
    """Export ``checkpoint`` to ``out`` in ``fmt`` (torchscript or onnx); returns the largest
    absolute difference between the exported model and PyTorch on a random input of
    spatial ``shape`` (default: the checkpoint's patch size). Raises :class:`BratsSegError`
    if it exceeds ``tolerance``; the file is written atomically and only if it passes."""
    if fmt not in EXPORTERS:
        raise BratsSegError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    ckpt, _ = load_model_source(checkpoint)  # ours, or a model folder trained elsewhere
    model = FirstOutput(network_of(ckpt)).eval()
    shape = tuple(int(s) for s in (shape or ckpt["patch_size"]))
    divisor = int(getattr(model.net, "size_divisor", 1))
    if len(shape) != 3 or any(s % divisor for s in shape):
        raise BratsSegError(f"export shape {list(shape)} must be 3 sides, multiples of {divisor}")
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(1, len(ckpt["channels"]), *shape, generator=gen)
    export, load = EXPORTERS[fmt]
    out = Path(out)
    with torch.no_grad():
        expected = model(example).numpy()
    with atomic_path(out) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # tracing warns about every Python int taken from a shape, and the ONNX exporter that
            # instance norm uses input statistics (it always does); the parity check below decides
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*instance_norm.*")
            export(model, example, tmp)
        if os.path.getsize(tmp) == 0:
            raise BratsSegError(f"{out}: the {fmt} exporter wrote an empty file")
        diff = float(np.abs(load(tmp)(example.numpy()) - expected).max())
        if not diff <= tolerance:
            raise BratsSegError(f"{out}: {fmt} export differs from PyTorch by {diff:.2e} (> {tolerance}); not written")
    return diff
