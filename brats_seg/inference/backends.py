"""Where the windows are computed: PyTorch (any device), ONNX Runtime or OpenVINO (CPU).

A back-end turns a member's network into a :class:`Runner`: a callable
``(n, C, *window)`` float32 tensor -> ``(n, K, *window)`` float32 logits that the
sliding window (:mod:`.sliding_window`) feeds batch by batch. The windows, their
Gaussian blending, mirroring and ensembling are the same whichever back-end computes
them; only the network's forward pass changes hands.

* ``torch``: the network itself (``channels_last_3d`` and bf16 autocast as asked);
* ``onnx``: ONNX Runtime's CPU execution provider on the graph exported in memory
  from the loaded network (TorchScript-based exporter, as ``brats-seg export``);
* ``openvino``: the same ONNX graph compiled by OpenVINO's CPU plugin (one compiled
  model per batch size seen, so every call has static shapes).

The ONNX graph is exported once per predictor from the checkpoint's weights; nothing
is written to disk. ``precision``: ``fp32`` everywhere; ``bf16`` with torch (autocast)
and OpenVINO (its inference precision hint); ONNX Runtime's CPU provider has no bf16
convolutions, so it refuses ``bf16``. The threads of ONNX Runtime and OpenVINO follow
``torch.get_num_threads()`` (set it with ``--threads``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import BratsSegError, require

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Runner:
    """A network as the sliding window calls it.

    ``run``: ``(n, C, *window)`` -> ``(n, K, *window)`` logits; ``channels_last``: feed windows in
    ``channels_last_3d``; ``autocast``: wrap each call in torch's bf16 autocast; ``precision``:
    what the runner computes in (``fp32`` or ``bf16``), for the record.
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    backend: str
    precision: str
    channels_last: bool = False
    autocast: bool = False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 on CUDA and fp32 elsewhere; ``fp32``/``bf16`` as given."""
    if precision not in PRECISIONS:
        raise BratsSegError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


class FirstOutput(torch.nn.Module):
    """Logits only: a deep-supervision list keeps its full-resolution head."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, (list, tuple)) else out


def onnx_model(network: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The network's ONNX graph (opset 17; batch and spatial axes dynamic), traced on ``example``."""
    axes = {0: "batch", 2: "height", 3: "width", 4: "depth"}
    buffer = io.BytesIO()
    net = network if isinstance(network, FirstOutput) else FirstOutput(network).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # tracing warns about every Python int taken from a shape, and the exporter that instance
        # norm uses input statistics (it always does); the parity tests decide
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*instance_norm.*")
        torch.onnx.export(net, (example,), buffer, dynamo=False, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes}, opset_version=17)
    return buffer.getvalue()


def _numpy_runner(call: Callable[[np.ndarray], np.ndarray]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(call(np.ascontiguousarray(batch.numpy(), dtype=np.float32))))

    return run


def torch_runner(network: torch.nn.Module, example: torch.Tensor, precision: str, channels_last: bool) -> Runner:
    return Runner(network, "torch", precision, channels_last=channels_last, autocast=precision == "bf16")


def onnxruntime_runner(network: torch.nn.Module, example: torch.Tensor, precision: str,
                       channels_last: bool) -> Runner:
    if precision != "fp32":
        raise BratsSegError("the onnx back-end computes in fp32 only (ONNX Runtime's CPU provider has no bf16"
                            " convolutions); use --precision fp32, or --backend openvino for bf16")
    ort = require("onnxruntime", "onnx", "--backend onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(onnx_model(network, example), options, providers=["CPUExecutionProvider"])
    return Runner(_numpy_runner(lambda x: session.run(["logits"], {"image": x})[0]), "onnx", precision)


def openvino_runner(network: torch.nn.Module, example: torch.Tensor, precision: str,
                    channels_last: bool) -> Runner:
    ov = require("openvino", "openvino", "--backend openvino")
    core = ov.Core()
    graph = onnx_model(network, example)
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"}
    compiled: dict[tuple[int, ...], object] = {}

    def call(x: np.ndarray) -> np.ndarray:
        if x.shape not in compiled:  # static shapes compile to the fastest kernels
            model = core.read_model(graph)
            model.reshape({model.inputs[0]: ov.PartialShape(list(x.shape))})
            compiled[x.shape] = core.compile_model(model, "CPU", config)
        return compiled[x.shape](x)[0]

    return Runner(_numpy_runner(call), "openvino", precision)


@contextlib.contextmanager
def host_threads(runner: Runner) -> Iterator[None]:
    """Around a sliding window: with ONNX Runtime or OpenVINO, torch's own work between their calls
    (gathering windows, blending them) runs on one thread. Their thread pools and torch's OpenMP threads,
    which spin after each parallel operation, otherwise compete for the same cores: an OpenVINO case took
    about 20 % longer on 2 cores. The torch back-end keeps its threads."""
    threads = torch.get_num_threads()
    if runner.backend != "torch":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


BACKENDS: dict[str, Callable[..., Runner]] = {
    "torch": torch_runner,
    "onnx": onnxruntime_runner,
    "openvino": openvino_runner,
}


def make_runner(backend: str, network: torch.nn.Module, *, in_channels: int, window: tuple[int, ...],
                device: torch.device, precision: str, channels_last: bool = True) -> Runner:
    """The :class:`Runner` of ``network`` (in eval mode, on ``device``) under ``backend``.

    ``precision``: ``fp32`` or ``bf16`` (resolve ``auto`` first with :func:`resolve_precision`).
    ONNX Runtime and OpenVINO run on the CPU only; their graph is traced on one window.
    """
    if backend not in BACKENDS:
        raise BratsSegError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend != "torch" and device.type != "cpu":
        raise BratsSegError(f"the {backend} back-end runs on the CPU; use --device cpu or --backend torch")
    example = torch.zeros((1, in_channels, *window), device=device)
    if backend == "torch" or not getattr(network, "mirroring", False):
        return BACKENDS[backend](network, example, precision, channels_last)
    # an nnU-Net import mirroring its windows: its graph holds one pass, the mirrored copies are separate calls
    # (a graph holding all 8 took more memory than nnU-Net itself: 948 against 834 MiB on an 80^3 crop)
    plain = copy.copy(network)  # shares the weights; the original keeps mirroring (the all-zero window's torch pass)
    plain.mirroring = False
    runner = BACKENDS[backend](plain, example, precision, channels_last)
    return dataclasses.replace(runner, run=_mirrored(runner.run, network.mirror_dims()))


def _mirrored(run: Callable[[torch.Tensor], torch.Tensor],
              flips: list[list[int]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run`` averaged over the mirrorings ``flips`` (dims of ``(n, C, *window)``): flip, run, flip back."""
    def call(batch: torch.Tensor) -> torch.Tensor:
        total = None
        for dims in flips:
            out = run(batch.flip(dims)).flip(dims) if dims else run(batch)
            total = out.clone() if total is None else total.add_(out)
        return total.div_(len(flips))

    return call
