"""README claims whose other tests reach them only below the CLI: `--debug` shows the traceback, `export --format
onnx` writes a graph that computes what the checkpoint computes, on-device augmentation refuses the nnunet
pipeline with one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.errors import BratsSegError
from brats_seg.models.registry import build_model


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line without --debug
    with pytest.raises(BratsSegError, match="no such file or folder"):
        main(["--debug", "check", str(tmp_path / "nowhere")])


def test_export_onnx_through_the_cli(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = build_model("unet3d", preset="tiny")
    ckpt = save_checkpoint(make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs,
                                           patch_size=(16, 16, 16)), tmp_path / "best.pt")
    out = tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    x = np.random.default_rng(1).standard_normal((1, 4, 32, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        net.eval()
        want = net(torch.from_numpy(x))
    want = (want[0] if isinstance(want, (list, tuple)) else want).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    capsys.readouterr()
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--shape", "15", "16",
                 "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "multiples" in err and not (tmp_path / "x.onnx").exists()


def test_on_device_augmentation_refuses_the_nnunet_pipeline(brats2021_case, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: unet3d\npreset: tiny\npatch: [16, 16, 16]\nepochs: 1\nsteps_per_epoch: 1\nfolds: 1\n"
                   "workers: 0\nthreads: 1\nprogress: false\naugment_on_device: true\n"
                   "augmentation:\n  pipeline: nnunet\n")
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'monai' pipeline only" in err[0]
