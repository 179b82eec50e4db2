"""Back-ends: ONNX Runtime and OpenVINO fed by the same sliding window give torch's probabilities
(max abs difference <= 1e-4 in fp32), through the API and ``brats-seg predict --backend``."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from test_cli_predict import tiny_checkpoint, write_case
from test_predictor_engine import tiny_case

from brats_seg.checkpoint import make_checkpoint
from brats_seg.cli import main
from brats_seg.errors import BratsSegError
from brats_seg.inference.backends import make_runner, resolve_precision
from brats_seg.inference.predictor import Predictor
from brats_seg.models.registry import build_model


@pytest.fixture(scope="module", params=["nnunet", "segresnet"])
def ckpt(request):
    torch.manual_seed(0)
    net = build_model(request.param, preset="tiny")
    with torch.no_grad():  # spread the untrained outputs so probabilities span (0, 1)
        last = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1]
        last.weight.mul_(20.0)
    return make_checkpoint(net, model_name=request.param, model_kwargs=net.build_kwargs, patch_size=(16, 16, 16))


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_backend_probabilities_equal_torch_in_fp32(ckpt, backend):
    vol = tiny_case((30, 27, 21))
    ref = Predictor([ckpt], device="cpu", overlap=0.5, batch_size=3).predict(vol)
    threads = torch.get_num_threads()
    other = Predictor([ckpt], device="cpu", overlap=0.5, batch_size=3, backend=backend).predict(vol)
    assert torch.get_num_threads() == threads  # torch's bookkeeping ran on one thread, then got its threads back
    assert ref.box_probabilities.std() > 0.05  # the probabilities are not all alike
    assert np.abs(other.box_probabilities - ref.box_probabilities).max() <= 1e-4
    assert (other.labels != ref.labels).mean() < 1e-3  # only voxels within 1e-4 of the threshold may flip


def test_openvino_bf16_is_close_and_recorded(ckpt):
    vol = tiny_case((30, 27, 21))
    ref = Predictor([ckpt], device="cpu").predict(vol)
    fast = Predictor([ckpt], device="cpu", backend="openvino", precision="bf16")
    assert fast.settings()["precision"] == "bf16" and fast.settings()["backend"] == "openvino"
    assert np.abs(fast.predict(vol).box_probabilities - ref.box_probabilities).max() < 0.1


def test_backend_refusals(ckpt):
    with pytest.raises(BratsSegError, match="fp32 only"):
        Predictor([ckpt], device="cpu", backend="onnx", precision="bf16")
    with pytest.raises(BratsSegError, match="unknown backend"):
        Predictor([ckpt], device="cpu", backend="tensorrt")
    with pytest.raises(BratsSegError, match="runs on the CPU"):
        make_runner("openvino", torch.nn.Identity(), in_channels=4, window=(8, 8, 8), device=torch.device("cuda"),
                    precision="fp32")
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"


def test_cli_backend_onnx_writes_what_torch_writes(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    case = write_case(tmp_path / "data", "BraTS2021_00001")
    outs = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        assert main(["predict", str(case), "--model", str(ckpt), "--out", str(out), "--no-progress",
                     "--backend", backend, "--threads", "1", "--probabilities"]) == 0
        side = json.loads((out / "BraTS2021_00001.json").read_text())
        assert side["settings"]["backend"] == backend and side["settings"]["precision"] == "fp32"
        outs[backend] = [np.asanyarray(nib.load(str(out / f"BraTS2021_00001{s}.nii.gz")).dataobj)
                         for s in ("", "_probabilities")]
    np.testing.assert_array_equal(outs["onnx"][0], outs["torch"][0])
    assert np.abs(outs["onnx"][1] - outs["torch"][1]).max() <= 1e-4
    assert main(["predict", str(case), "--model", str(ckpt), "--out", str(tmp_path / "x"),
                 "--backend", "onnx", "--precision", "bf16"]) == 2
    assert "fp32 only" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_backends_keep_the_checkpoints_outputs(backend):
    """A brats2024-gli model (WT TC ET RC): the onnx/openvino graph has its four channels and the labels are
    written back as its outputs say (RC as 4), as with torch."""
    from brats_seg.outputs import default_outputs

    torch.manual_seed(0)
    gli = default_outputs("brats2024-gli")
    net = build_model("nnunet", preset="tiny", out_channels=4)
    with torch.no_grad():
        [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1].weight.mul_(20.0)
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16),
                           label_scheme=gli.scheme, outputs=gli)
    vol = tiny_case((30, 27, 21))
    ref = Predictor([ckpt], device="cpu", overlap=0.5).predict(vol)
    other = Predictor([ckpt], device="cpu", overlap=0.5, backend=backend).predict(vol)
    assert other.box_probabilities.shape[0] == 4 and other.info["label_scheme"] == "brats2024-gli"
    assert np.abs(other.box_probabilities - ref.box_probabilities).max() <= 1e-4
    assert (other.labels != ref.labels).mean() < 1e-3 and 4 in ref.labels
