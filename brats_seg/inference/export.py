"""Export a checkpoint's network to TorchScript or ONNX, and check the export against PyTorch.

The exported graph maps ``(B, C, H, W, D)`` float32 (channels in the checkpoint's order,
preprocessed as the checkpoint says) to logits ``(B, G, H, W, D)``, one per output group of the
checkpoint (``ckpt["outputs"]``, :mod:`brats_seg.outputs`; WT, TC, ET by default); apply a sigmoid
for their probabilities (a softmax for label outputs). Tracing records one input shape: the export is checked at
that shape (``shape``, default the training patch), and the ONNX graph declares the batch
and spatial axes dynamic. Sliding windows of that size are the intended use.

Every export is verified: the exported model and the PyTorch model run on the same
random input and their largest absolute difference is returned (and must stay within
``tolerance``). ONNX uses the TorchScript-based exporter (``dynamo=False``) so no
extra package (onnxscript) is needed (:func:`.backends.onnx_model`, the graph the onnx and
openvino prediction back-ends run); it is checked with onnxruntime.

Every export carries the checkpoint's outputs (:meth:`~brats_seg.outputs.Outputs.to_dict` as JSON):
ONNX in the model's ``metadata_props`` under ``brats_seg.outputs`` (and the ``logits`` output's
doc string names the G groups), TorchScript in the extra file ``outputs.json``.
:func:`exported_outputs` reads them back. The onnx and openvino prediction back-ends do not read
exported files: they export the checkpoint's network in memory, and the predictor takes the
outputs from the checkpoint itself.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import BratsSegError, require
from ..files import atomic_path
from ..outputs import Outputs, outputs_of
from .backends import FirstOutput, onnx_model
from .members import load_model_source, network_of

FORMATS = ("torchscript", "onnx")
METADATA_KEY = "brats_seg.outputs"  # ONNX metadata_props key of the outputs' JSON
EXTRA_FILE = "outputs.json"  # TorchScript extra file holding the same JSON


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, outputs: Outputs) -> None:
    traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: json.dumps(outputs.to_dict())})


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, outputs: Outputs) -> None:
    onnx = require("onnx", "onnx", "exporting to ONNX")
    graph = onnx.load_from_string(onnx_model(model, example))
    onnx.helper.set_model_props(graph, {METADATA_KEY: json.dumps(outputs.to_dict())})
    graph.graph.output[0].doc_string = (f"(B, {outputs.channels}, H, W, D) logits, one per output group"
                                        f" ({outputs.kind} {' '.join(outputs.groups)});"
                                        f" {'sigmoid' if outputs.kind == 'regions' else 'softmax'} for probabilities")
    path.write_bytes(graph.SerializeToString())


def exported_outputs(path: str | Path) -> Outputs:
    """The outputs recorded in an exported file (``.onnx``: ONNX; anything else: TorchScript).

    Raises :class:`BratsSegError` naming the file when it holds none (exported before they were recorded)."""
    path = Path(path)
    if path.suffix == ".onnx":
        onnx = require("onnx", "onnx", "reading an ONNX export")
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        text = props.get(METADATA_KEY, "")
    else:
        extra = {EXTRA_FILE: ""}
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        text = extra[EXTRA_FILE]
    if not text:
        raise BratsSegError(f"{path}: the export records no brats_seg outputs (made before exports carried them)")
    return Outputs.from_dict(json.loads(text))


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
    spatial ``shape`` (default: the checkpoint's patch size). The file records the checkpoint's
    outputs (:func:`exported_outputs` reads them). Raises :class:`BratsSegError`
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
    outputs = outputs_of(ckpt)
    with torch.no_grad():
        expected = model(example).numpy()
    if expected.shape[1] != outputs.channels:
        raise BratsSegError(f"{checkpoint}: the network has {expected.shape[1]} output channels; its outputs"
                            f" ({outputs.kind} {' '.join(outputs.groups)}) need {outputs.channels}")
    with atomic_path(out) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # tracing warns about every Python int taken from a shape, and the ONNX exporter that
            # instance norm uses input statistics (it always does); the parity check below decides
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*instance_norm.*")
            export(model, example, tmp, outputs)
        if os.path.getsize(tmp) == 0:
            raise BratsSegError(f"{out}: the {fmt} exporter wrote an empty file")
        diff = float(np.abs(load(tmp)(example.numpy()) - expected).max())
        if not diff <= tolerance:
            raise BratsSegError(f"{out}: {fmt} export differs from PyTorch by {diff:.2e} (> {tolerance}); not written")
    return diff
