"""Export parity: TorchScript and ONNX (onnxruntime) match PyTorch; exports carry the checkpoint's outputs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.errors import BratsSegError
from brats_seg.inference.export import export_checkpoint, exported_outputs
from brats_seg.models.registry import build_model
from brats_seg.outputs import Outputs, default_outputs


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


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_records_the_checkpoints_outputs(fmt, tmp_path, capsys):
    """A tiny brats2024-gli model (WT TC ET RC) exported through the CLI: the file's outputs metadata equals
    the checkpoint's, and the ONNX ``logits`` output names its four groups."""
    import onnx

    gli = default_outputs("brats2024-gli")
    net = build_model("nnunet", preset="tiny", out_channels=4, features=[2, 4], strides=[1, 2])
    ckpt = save_checkpoint(make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs,
                                           label_scheme=gli.scheme, patch_size=(16, 16, 16), outputs=gli),
                           tmp_path / "gli.pt")
    out = tmp_path / ("gli.onnx" if fmt == "onnx" else "gli.ts.pt")
    assert main(["export", str(ckpt), "--format", fmt, "--out", str(out)]) == 0
    assert "outputs: regions WT TC ET RC" in capsys.readouterr().err
    assert exported_outputs(out) == Outputs.from_dict(load_checkpoint(ckpt)["outputs"]) == gli
    if fmt == "onnx":
        model = onnx.load(str(out))
        assert model.graph.output[0].doc_string.startswith("(B, 4, H, W, D) logits, one per output group")
        assert "WT TC ET RC" in model.graph.output[0].doc_string
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert json.loads(session.get_modelmeta().custom_metadata_map["brats_seg.outputs"]) == {
            "scheme": "brats2024-gli", "kind": "regions", "groups": ["WT", "TC", "ET", "RC"], "values": [2, 1, 3, 4]}


def test_an_export_without_outputs_is_named(tmp_path):
    out = tmp_path / "old.ts.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(out))
    with pytest.raises(BratsSegError, match="old.ts.pt: the export records no brats_seg outputs"):
        exported_outputs(out)
