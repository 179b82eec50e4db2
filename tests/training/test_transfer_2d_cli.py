"""README "Models" and "Training notes": 2-D torchvision ResNet weights inflated into resnet_unet's 3-D encoder
through `brats-seg train --init-from`, and `--encoder-lr-scale` giving the encoder its own learning rate."""

from __future__ import annotations

import torch

from brats_seg.cli import main
from helpers import torchvision_style_file, write_dataset

RAW = ["--model", "resnet_unet", "--preset", "tiny", "--patch", "32", "--workers", "0", "--threads", "1",
       "--no-progress", "--folds", "1", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1"]


def test_2d_weights_inflated_through_the_cli(tmp_path, capsys):
    sd2d = torchvision_style_file(tmp_path / "resnet2d.pth")
    data = write_dataset(tmp_path / "data", "brats2021", n_cases=2)
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(tmp_path / "ft"), *RAW, "--init-from", str(tmp_path / "resnet2d.pth"),
                 "--freeze-encoder-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "inflated 2-D -> 3-D" in out and "unexpected (2): fc.bias, fc.weight" in out and "mismatched (0)" in out
    state = torch.load(tmp_path / "ft" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    w2, w3 = sd2d["layer1.0.conv1.weight"], state["encoder.layer1.0.conv1.weight"]
    assert torch.allclose(w3, w2.unsqueeze(2).repeat(1, 1, w3.shape[2], 1, 1) / w3.shape[2])  # I3D inflation
    x2 = torch.randn(1, w2.shape[1], 9, 9)  # identical slices through the inflated kernel = the 2-D convolution
    y3 = torch.nn.functional.conv3d(x2.unsqueeze(2).repeat(1, 1, 5, 1, 1), w3, padding=1)
    assert torch.allclose(y3[:, :, 2], torch.nn.functional.conv2d(x2, w2, padding=1), atol=1e-5)
    assert state["encoder.conv1.weight"].shape[1] == 4  # the RGB stem adapted to the four MRI channels


def test_encoder_lr_scale(tmp_path):
    data = write_dataset(tmp_path / "data", "brats2021", n_cases=2)
    assert main(["train", str(data), "--out", str(tmp_path / "run"), *RAW, "--lr", "0.01",
                 "--encoder-lr-scale", "0.1", "--batch-size", "2"]) == 0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    groups = ckpt["training"]["optimizer"]["param_groups"]
    encoder, rest = groups
    assert encoder["base_lr"] == 0.01 * 0.1 and rest["base_lr"] == 0.01
