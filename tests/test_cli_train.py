"""``brats-seg train`` through the real entry point: bad configs fail early; raw data trains and resumes."""

from __future__ import annotations

import csv

import pytest
import torch

from brats_seg.checkpoint import load_checkpoint, spacing_of
from brats_seg.cli import main

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "2",
        "--workers", "0", "--threads", "1", "--no-progress"]


@pytest.mark.parametrize("change, message", [
    (["--model", "unet9d"], "unknown model 'unet9d'"),
    (["--patch", "18"], "patch 18x18x18 does not fit model 'unet3d'"),
    (["--loss", "focal"], "unknown loss 'focal'"),
    (["--time-budget", "0"], "time_budget must be positive"),
    (["--time-budget", "5", "--warmup", "1"], "with a time budget, warmup is the share of the budget"),
    (["--output-scheme", "brats2099"], "unknown label scheme 'brats2099'"),
    (["--device", "cuda:x"], "unknown device 'cuda:x'"),
    (["--model", "resnet_unet", "--patch", "32", "--batch-size", "1"], "batch norm cannot train on one value"),
])
def test_bad_config_fails_before_any_work(brats2021_case, tmp_path, capsys, change, message):
    run = tmp_path / "run"
    code = main(["train", str(brats2021_case), "--out", str(run), *TINY, *change])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not run.exists()


def test_missing_data_folder(tmp_path, capsys):
    code = main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nowhere: data folder not found" in err[0]


def test_train_raw_folder_then_resume(brats2021_case, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(brats2021_case), "--out", str(run), *TINY, "--epochs", "1", "--folds", "1"]) == 0
    for name in ("config.yaml", "splits.json", "log.csv", "curves.png", "checkpoints/last.pt", "checkpoints/best.pt",
                 "cache/dataset.json"):
        assert (run / name).is_file(), name
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["model"]["name"] == "unet3d" and ckpt["patch_size"] == [16, 16, 16]
    assert ckpt["label_scheme"] == "brats2021" and ckpt["channels"] == ["t1n", "t1c", "t2w", "t2f"]
    assert spacing_of(ckpt) == (1.0, 1.0, 1.0)  # the case's own spacing: no target spacing was set
    # an existing run is never overwritten by accident
    assert main(["train", str(brats2021_case), "--out", str(run), *TINY, "--epochs", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    # resume reads config.yaml; --epochs extends the run
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["training"]["epoch"] == 2


def test_softmax_loss_sgd_cosine_warmup(brats2021_case, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(brats2021_case), "--out", str(run), *TINY, "--epochs", "2", "--folds", "1",
                 "--loss", "dice_ce", "--optimizer", "sgd", "--schedule", "cosine", "--warmup", "1"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["model"]["kwargs"]["out_channels"] == 4 and ckpt["provenance"]["output_activation"] == "softmax"
    assert ckpt["training"]["optimizer"]["param_groups"][0]["nesterov"] is True
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert float(rows[0]["lr"]) == pytest.approx(0.001)  # end of the 1-epoch warm-up: the base lr


def test_config_file_with_flag_override(brats2021_case, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: unet3d\npreset: tiny\npatch: [16, 16, 16]\nepochs: 3\nsteps_per_epoch: 1\nfolds: 1\n"
                   "workers: 0\nthreads: 1\nprogress: false\n"
                   "augmentation:\n  p_elastic: 1.0\n  scale_range: [0.9, 1.1]\n"
                   "preprocess:\n  spacing: [1.5, 1.5, 2.0]\n")
    run = tmp_path / "run"
    assert main(["train", str(brats2021_case), "--out", str(run), "--config", str(cfg), "--epochs", "1",
                 "--model-arg", "features=[4, 8, 16]", "--fg-fraction", "0.5"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["model"]["kwargs"]["features"] == [4, 8, 16]
    assert ckpt["spacing"] == [1.5, 1.5, 2.0]  # the preprocessing's target spacing
    saved = (run / "config.yaml").read_text()
    assert "epochs: 1" in saved and "model: unet3d" in saved and "p_elastic: 1.0" in saved
    bad = tmp_path / "bad.yaml"
    bad.write_text("modell: unet3d\n")
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "r2"), "--config", str(bad)]) == 2


def test_train_vnas_from_a_genotype_file(brats2021_case, tmp_path, capsys):
    from brats_seg.models.nas.genotype import save_genotype

    genotype = save_genotype({"cells": ["p3d", "conv2d", "conv3d"]}, tmp_path / "genotype.json")
    run = tmp_path / "run"
    args = ["train", str(brats2021_case), "--out", str(run), *TINY[2:], "--epochs", "1", "--folds", "1"]
    assert main([*args, "--genotype", str(genotype), "--model-arg", "features=[4,8]",
                 "--model-arg", "strides=[1,2]"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["model"]["name"] == "vnas"
    saved = ckpt["model"]["kwargs"]["genotype"]  # a format-1 file (cells) trains as the level space
    assert saved["space"] == "level" and saved["encoder"] == [["p3d"], ["conv2d"]] and saved["decoder"] == [["conv3d"]]
    (tmp_path / "bad.json").write_text('{"cells": ["conv9d"]}')
    assert main([*args[:3], str(tmp_path / "r2"), *args[4:], "--genotype", str(tmp_path / "bad.json")]) == 2
    assert "unknown op 'conv9d'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda(brats2021_case, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(brats2021_case), "--out", str(run), *TINY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0] and not run.exists()
