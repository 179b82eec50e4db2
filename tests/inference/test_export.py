"""Export parity: TorchScript and ONNX (onnxruntime) match PyTorch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.errors import BratsSegError
from brats_seg.inference.export import export_checkpoint
from brats_seg.models.registry import build_model


@pytest.fixture(scope="module", params=["nnunet", "segresnet"])
def ckpt(request, tmp_path_factory):
    torch.manual_seed(0)
    net = build_model(request.param, preset="tiny")
    ckpt = make_checkpoint(net, model_name=request.param, model_kwargs=net.build_kwargs, patch_size=(16, 16, 16))
    ckpt["provenance"]["versions"] = {k: str(v) for k, v in ckpt["provenance"]["versions"].items()}
    return save_checkpoint(ckpt, tmp_path_factory.mktemp(request.param) / "m.pt")


def pytorch(ckpt, x):
    with torch.no_grad():
        return model_from_checkpoint(load_checkpoint(ckpt))(torch.from_numpy(x)).numpy()


def test_torchscript_matches_pytorch(ckpt, tmp_path):
    out = tmp_path / "m.ts.pt"
    assert main(["export", str(ckpt), "--format", "torchscript", "--out", str(out)]) == 0
    x = np.random.default_rng(1).standard_normal((2, 4, 16, 16, 16)).astype(np.float32)
    with torch.no_grad():
        got = torch.jit.load(str(out))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, pytorch(ckpt, x), rtol=1e-4, atol=1e-4)


def test_onnx_matches_pytorch_including_other_shapes(ckpt, tmp_path):
    out = tmp_path / "m.onnx"
    diff = export_checkpoint(ckpt, "onnx", out)
    assert diff < 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).standard_normal((2, 4, 24, 16, 32)).astype(np.float32)  # dynamic axes
    np.testing.assert_allclose(session.run(None, {"image": x})[0], pytorch(ckpt, x), rtol=1e-4, atol=1e-4)


def test_bad_format_and_shape(ckpt, tmp_path):
    with pytest.raises(BratsSegError, match="format"):
        export_checkpoint(ckpt, "tflite", tmp_path / "x")
    with pytest.raises(BratsSegError, match="multiples"):
        export_checkpoint(ckpt, "onnx", tmp_path / "x.onnx", shape=(15, 16, 16))
    assert not list(tmp_path.iterdir())
