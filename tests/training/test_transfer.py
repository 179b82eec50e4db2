"""Transfer learning: partial loading with a report, I3D inflation of 2-D weights, frozen encoder,
and Models Genesis pretraining feeding --init-from."""

from __future__ import annotations

import csv

import pytest
import torch
from trainhelp import write_toy_cache

from brats_seg.cli import main
from brats_seg.errors import CheckpointError, ConfigError
from brats_seg.models.registry import build_model
from brats_seg.training.transfer import inflate_kernel, load_pretrained

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "2",
        "--workers", "0", "--threads", "1", "--no-progress", "--folds", "1"]


def test_partial_load_reports_keys(tmp_path):
    src = build_model("unet3d", preset="tiny", out_channels=4)  # e.g. a softmax or restoration head
    sd = {f"module.{k}": v for k, v in src.state_dict().items()}  # a DDP-wrapped plain state dict
    sd["extra.weight"] = torch.zeros(2)
    torch.save(sd, tmp_path / "plain.pt")
    dst = build_model("unet3d", preset="tiny")
    report = load_pretrained(dst, tmp_path / "plain.pt")
    heads = [k for k in dst.state_dict() if k.startswith("decoder.heads")]
    assert set(report.loaded) == set(dst.state_dict()) - set(heads)
    assert [m.split(":")[0] for m in report.mismatched] == heads and report.unexpected == ["extra.weight"]
    text = report.format()
    assert "loaded 34 tensors" in text and "encoder.stages.0.convs.0.0.weight" in text and "mismatched (2)" in text
    for k in report.loaded:
        assert torch.equal(dst.state_dict()[k], src.state_dict()[k])


class Pickled:
    """An arbitrary Python object: loading it would need a pickle (refused)."""


def test_pickled_or_unrelated_files_are_refused(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Pickled()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_pretrained(build_model("unet3d", preset="tiny"), tmp_path / "evil.pt")
    torch.save({"w": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="none of its 1 tensors fits"):
        load_pretrained(build_model("unet3d", preset="tiny"), tmp_path / "other.pt")


def test_inflate_2d_resnet_weights_into_3d_encoder(tmp_path):
    model = build_model("resnet_unet", preset="tiny")
    own = model.state_dict()
    # a tiny torchvision-format 2-D ResNet state dict: same names, 2-D kernels, RGB input, a classifier
    sd2d = {}
    for k, v in own.items():
        if not k.startswith("encoder."):
            continue
        name = k[len("encoder."):]
        if v.ndim == 5:
            o, i, t, kh, kw = v.shape
            sd2d[name] = torch.randn(o, 3 if name == "conv1.weight" else i, kh, kw)
        else:
            sd2d[name] = torch.rand(v.shape) if v.is_floating_point() else v.clone()
    sd2d["fc.weight"], sd2d["fc.bias"] = torch.randn(10, 64), torch.randn(10)
    torch.save(sd2d, tmp_path / "resnet2d.pth")
    report = load_pretrained(model, tmp_path / "resnet2d.pth")
    assert report.unexpected == ["fc.bias", "fc.weight"] and not report.mismatched
    assert set(report.loaded) == {k for k in own if k.startswith("encoder.")}
    assert "encoder.layer1.0.conv1.weight" in report.inflated
    new = model.state_dict()
    w2, w3 = sd2d["layer1.0.conv1.weight"], new["encoder.layer1.0.conv1.weight"]
    assert torch.allclose(w3, w2.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)
    # a volume of identical slices through an inflated kernel = the 2-D convolution (I3D's property)
    x2 = torch.randn(1, w2.shape[1], 9, 9)
    y2 = torch.nn.functional.conv2d(x2, w2, padding=1)
    y3 = torch.nn.functional.conv3d(x2.unsqueeze(2).repeat(1, 1, 5, 1, 1), w3, padding=1)
    assert torch.allclose(y3[:, :, 2], y2, atol=1e-5)
    # RGB stem: channel mean repeated over the 4 MRI channels, scaled by 3/4
    stem = new["encoder.conv1.weight"]
    assert stem.shape[1] == 4
    assert torch.allclose(stem, inflate_kernel(sd2d["conv1.weight"], stem.shape))
    assert torch.allclose(stem[:, 0].sum(1), sd2d["conv1.weight"].mean(1) * 3 / 4, atol=1e-6)


def test_init_from_and_frozen_encoder_stay_unchanged(tmp_path, capsys):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=3)
    assert main(["train", str(cache), "--out", str(tmp_path / "a"), *TINY, "--epochs", "1"]) == 0
    first = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    capsys.readouterr()
    assert main(["train", str(cache), "--out", str(tmp_path / "b"), *TINY, "--epochs", "1",
                 "--init-from", str(tmp_path / "a" / "checkpoints" / "last.pt"), "--freeze-encoder-epochs", "1",
                 "--lr", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "loaded 38 tensors" in out and "encoder.stages.0.convs.0.0.weight" in out and "missing (0)" in out
    second = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    enc = [k for k in first if k.startswith("encoder.")]
    assert enc and all(torch.equal(first[k], second[k]) for k in enc)
    assert any(not torch.equal(first[k], second[k]) for k in first if k.startswith("decoder."))


def test_pretrain_then_finetune(tmp_path, capsys):
    cache = tmp_path / "cache"
    write_toy_cache(cache, n=2)
    assert main(["pretrain", str(cache), "--out", str(tmp_path / "pre"), "--model", "unet3d", "--preset", "tiny",
                 "--patch", "16", "--epochs", "2", "--steps-per-epoch", "3", "--workers", "0", "--threads", "1",
                 "--no-progress"]) == 0
    with open(tmp_path / "pre" / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    pre = tmp_path / "pre" / "checkpoints" / "last.pt"
    assert torch.load(pre, weights_only=True)["model"]["kwargs"]["out_channels"] == 4
    capsys.readouterr()
    assert main(["train", str(cache), "--out", str(tmp_path / "ft"), *TINY, "--epochs", "1", "--init-from",
                 str(pre)]) == 0
    out = capsys.readouterr().out
    assert "loaded 34 tensors" in out and "mismatched (2): decoder.heads.0.weight" in out
