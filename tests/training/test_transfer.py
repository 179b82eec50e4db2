"""Transfer learning: partial loading with a report, I3D inflation of 2-D weights, MedicalNet-style encoder files,
a frozen encoder, and Models Genesis pretraining on unlabelled scans feeding --init-from (same normalization)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from trainhelp import write_toy_cache

from brats_seg.cli import main
from brats_seg.errors import CheckpointError, ConfigError
from brats_seg.models.registry import build_model
from brats_seg.training.weight_transfer import inflate_kernel, load_pretrained
from helpers import torchvision_style_file

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
    sd2d = torchvision_style_file(tmp_path / "resnet2d.pth")  # 2-D kernels, RGB stem, a classifier head
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


RAW = ["--workers", "0", "--threads", "1", "--no-progress", "--folds", "1", "--epochs", "1", "--steps-per-epoch", "1",
       "--batch-size", "1"]


def medicalnet_file(path, seed: int = 1):
    """A MedicalNet-shaped file: a 3-D ResNet (MONAI's, as MedicalNet's: conv1 7^3 over ONE input channel,
    layer1..4, a classifier) saved DataParallel-style as ``{"state_dict": {"module.conv1.weight": ...}}``."""
    from monai.networks.nets.resnet import ResNet

    torch.manual_seed(seed)
    src = ResNet("basic", [1, 1, 1, 1], [8, 16, 32, 64], spatial_dims=3, n_input_channels=1, conv1_t_size=7,
                 conv1_t_stride=2, num_classes=2)
    for m in src.modules():  # trained-looking batch-norm statistics, so a copy is visible
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 200}, path)
    return state


def test_medicalnet_weights_through_the_cli(tmp_path, capsys):
    from helpers import write_dataset

    state = medicalnet_file(tmp_path / "medicalnet_resnet.pth")
    data = write_dataset(tmp_path / "data", "brats2021", n_cases=2)
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(tmp_path / "ft"), "--model", "resnet_unet", "--preset", "tiny",
                 "--patch", "32", "--init-from", str(tmp_path / "medicalnet_resnet.pth"),
                 "--freeze-encoder-epochs", "1", *RAW]) == 0
    out = capsys.readouterr().out
    assert "file keys placed under 'encoder.'" in out
    assert "adapted (1): encoder.conv1.weight: 1 -> 4 input channels (channel mean repeated, x 1/4)" in out
    assert "unexpected (2): fc.bias, fc.weight" in out
    assert "mismatched (0)" in out and "records no preprocessing" in out and "'zscore'" in out
    ckpt = torch.load(tmp_path / "ft" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    enc = {k[len("encoder."):]: v for k, v in ckpt.items() if k.startswith("encoder.")}
    assert torch.allclose(enc["conv1.weight"], state["module.conv1.weight"].repeat(1, 4, 1, 1, 1) / 4)
    x = torch.randn(1, 1, 9, 9, 9)  # four identical input channels give the one-channel network's activations
    conv = torch.nn.functional.conv3d
    assert torch.allclose(conv(x.repeat(1, 4, 1, 1, 1), enc["conv1.weight"]), conv(x, state["module.conv1.weight"]),
                          atol=1e-5)
    for k, v in enc.items():  # the frozen encoder is the file's, batch-norm statistics included
        if k != "conv1.weight":
            assert torch.equal(v, state[f"module.{k}"]), k


def unlabelled_real_scans(shared_data, root, n=2):
    """Real BraTS 2018 scans without their label maps (links to the four sequences of ``n`` cases)."""
    for case in sorted((shared_data / "brats2018").iterdir())[:n]:
        (root / case.name).mkdir(parents=True)
        for f in case.glob("*.nii.gz"):
            if not f.name.endswith("_seg.nii.gz"):
                (root / case.name / f.name).symlink_to(f)
    return root


def test_pretrain_on_unlabelled_real_scans_then_finetune(shared_data, tmp_path, capsys):
    from helpers import write_dataset

    scans = unlabelled_real_scans(shared_data, tmp_path / "unlabelled")
    assert main(["pretrain", str(scans), "--out", str(tmp_path / "pre"), "--model", "unet3d", "--preset", "tiny",
                 "--patch", "16", "--epochs", "2", "--steps-per-epoch", "2", "--workers", "0", "--threads", "1",
                 "--no-progress"]) == 0
    assert "pretrained 2 epochs on 2 cases" in capsys.readouterr().out
    with open(tmp_path / "pre" / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    pre = torch.load(tmp_path / "pre" / "checkpoints" / "last.pt", weights_only=True)
    assert pre["model"]["kwargs"]["out_channels"] == 4 and pre["provenance"]["task"] == "models_genesis_restoration"

    data = write_dataset(tmp_path / "labelled", "brats2021", n_cases=2)
    assert main(["train", str(data), "--out", str(tmp_path / "ft"), "--model", "unet3d", "--preset", "tiny",
                 "--patch", "16", "--init-from", str(tmp_path / "pre" / "checkpoints" / "last.pt"), *RAW]) == 0
    out = capsys.readouterr().out
    assert "loaded 34 tensors" in out and "mismatched (2): decoder.heads.0.weight" in out
    assert "inputs: preprocessed as this run's data (normalization 'zscore')" in out
    ft = torch.load(tmp_path / "ft" / "checkpoints" / "last.pt", weights_only=True)
    fine_tune_cache = json.loads((tmp_path / "ft" / "cache" / "dataset.json").read_text())
    assert pre["preprocessing"] == ft["preprocessing"] == fine_tune_cache["config"]  # normalized the same way
    assert pre["channels"] == ft["channels"]


def test_finetune_refuses_weights_pretrained_on_other_normalization(tmp_path, capsys):
    from helpers import write_dataset

    data = write_dataset(tmp_path / "data", "brats2021", n_cases=2)
    assert main(["preprocess", str(data), str(tmp_path / "pct"), "--normalization", "percentile",
                 "--quiet"]) == 0
    assert main(["pretrain", str(tmp_path / "pct"), "--out", str(tmp_path / "pre"), "--model", "unet3d", "--preset",
                 "tiny", "--patch", "16", "--epochs", "1", "--steps-per-epoch", "1", "--workers", "0",
                 "--no-progress"]) == 0
    capsys.readouterr()
    pre = tmp_path / "pre" / "checkpoints" / "last.pt"
    assert main(["train", str(data), "--out", str(tmp_path / "ft"), "--model", "unet3d", "--preset", "tiny",
                 "--patch", "16", "--init-from", str(pre), *RAW]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(pre) in err[0]
    assert "normalization=percentile" in err[0] and "normalization=zscore" in err[0]


def test_restoration_pairs_keep_the_cache_scale():
    from brats_seg.training.genesis import Distortions, restoration_pair

    scales = np.array([1.0, 2.0, 3.0, 0.5])[:, None, None, None]  # channels of different spread
    patch = (np.random.default_rng(0).normal(size=(4, 16, 16, 16)) * scales).astype(np.float32)
    x, y = restoration_pair(patch, np.random.default_rng(5), Distortions(p_flip=0.0))
    assert np.array_equal(y, patch)  # the target is the patch itself, in the cache's normalization
    lo, hi = patch.min(axis=(1, 2, 3)), patch.max(axis=(1, 2, 3))
    assert np.all(x.min(axis=(1, 2, 3)) >= lo - 1e-5) and np.all(x.max(axis=(1, 2, 3)) <= hi + 1e-5)
    x2, _ = restoration_pair(patch, np.random.default_rng(5), Distortions(p_flip=0.0))
    assert np.array_equal(x, x2)  # seeded
    reference = Distortions()  # the Models Genesis reference code's config.py
    assert (reference.p_flip, reference.p_shuffle, reference.shuffle_blocks, reference.p_intensity, reference.p_paint,
            reference.p_outpaint) == (0.4, 0.5, 10000, 0.9, 0.9, 0.8)
    none = Distortions(p_flip=0.0, p_shuffle=0.0, p_intensity=0.0, p_paint=0.0)
    x3, _ = restoration_pair(patch, np.random.default_rng(5), none)
    np.testing.assert_allclose(x3, patch, atol=1e-5)  # no distortion: the input is the target
