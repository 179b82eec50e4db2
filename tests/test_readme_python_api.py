"""The README's "Python API" block run as written (tiny sizes) on a dataset, and the defaults the README's training
notes list as shared with nnU-Net v2 or departing from it."""

from __future__ import annotations

import numpy as np
import torch

import brats_seg as bs
from brats_seg.conventions import get_scheme
from helpers import write_dataset


def test_readme_python_api_block_on_a_dataset(tmp_path):
    root = write_dataset(tmp_path / "data", "brats2021", n_cases=2, shape=(16, 16, 16))
    cases = bs.discover_cases(root)
    assert len(cases) == 2
    vol = bs.load_case(cases[0])
    assert vol.image.shape == (4, 16, 16, 16) and vol.image.dtype == np.float32 and vol.label.shape == (16, 16, 16)

    model = bs.build_model("segresnet", preset="tiny")
    with torch.no_grad():
        assert model(torch.zeros(1, 4, 16, 16, 16)).shape == (1, 3, 16, 16, 16)  # WT, TC, ET logits

    run = tmp_path / "runs" / "x"
    bs.train(bs.TrainConfig(data=str(root), out=str(run), model="unet3d", preset="tiny", patch=(16, 16, 16),
                            epochs=1, steps_per_epoch=1, folds=1, workers=0, threads=1, progress=False))
    # README "The checkpoint": one file, weights_only, everything needed to predict inside
    raw = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert {"format", "model", "channels", "regions", "label_scheme", "preprocessing", "patch_size", "spacing",
            "state_dict", "provenance"} <= set(raw)
    assert set(raw["model"]) >= {"name", "kwargs"} and raw["channels"] == ["t1n", "t1c", "t2w", "t2f"]
    assert {"epoch", "metrics", "config", "versions"} <= set(raw["provenance"])
    predictor = bs.Predictor([run / "checkpoints" / "best.pt"], tta=8)
    labels, probabilities = predictor.predict_volumes(vol)
    assert labels.shape == vol.label.shape and labels.dtype == np.uint8  # the input's geometry ...
    assert set(np.unique(labels).tolist()) <= set(get_scheme("brats2021").values)  # ... and scheme
    assert probabilities.shape == (3, 16, 16, 16) and probabilities.dtype == np.float32
    scores = bs.evaluate_case(labels, vol.label, vol.spacing, "brats2021", "brats2021")
    assert set(scores) == {"WT", "TC", "ET"} and all(0.0 <= s["dice"] <= 1.0 for s in scores.values())
    perfect = bs.evaluate_case(vol.label, vol.label, vol.spacing, "brats2021", "brats2021")
    assert all(s["dice"] == 1.0 and s["hd95"] == 0.0 for s in perfect.values())

    assert bs.TrainConfig(recipe="nnunet", data=str(root), out=str(tmp_path / "y")).optimizer == "sgd"
    recipes = bs.list_recipes()
    assert "nnunet" in [r["name"] for r in recipes] and all({"name", "description", "reference"} <= set(r)
                                                              for r in recipes)


def test_defaults_shared_with_nnunet_and_the_departures(tmp_path):
    """README training notes: what the defaults share with nnU-Net v2's trainer and where they depart."""
    ours = bs.TrainConfig()
    nnunet = bs.TrainConfig(recipe="nnunet", data=str(tmp_path), out=str(tmp_path / "run"))
    shared = ("steps_per_epoch", "batch_size", "schedule", "grad_clip", "deep_supervision", "folds", "loss", "patch")
    assert {k: getattr(ours, k) for k in shared} == {k: getattr(nnunet, k) for k in shared}
    assert (ours.steps_per_epoch, ours.batch_size, ours.schedule, ours.grad_clip, ours.folds) == (250, 2, "poly", 12,
                                                                                                  5)
    assert ours.loss == "dice_bce" and ours.deep_supervision
    assert round(ours.batch_size * ours.fg_fraction) == round(nnunet.batch_size * nnunet.fg_fraction) == 1  # 1 of 2
    augment = ("p_rotate", "rotate_degrees", "p_scale", "scale_range", "p_noise", "p_blur", "p_brightness",
               "p_gamma", "p_flip", "p_elastic")
    assert {k: getattr(ours.augmentation, k) for k in augment} == {k: getattr(nnunet.augmentation, k)
                                                                   for k in augment}
    assert ours.augmentation.p_elastic == 0.0
    # the departures
    assert (ours.optimizer, ours.lr, ours.weight_decay, ours.epochs) == ("adamw", 1e-3, 1e-4, 100)
    assert (nnunet.optimizer, nnunet.lr, nnunet.weight_decay, nnunet.epochs) == ("sgd", 1e-2, 3e-5, 1000)
    assert ours.init == "default" and nnunet.init == "he"
    assert ours.batch_dice and not nnunet.batch_dice
    assert ours.augmentation.pipeline == "monai" and nnunet.augmentation.pipeline == "nnunet"
    assert ours.augmentation.p_shift > 0 and ours.augmentation.p_contrast == 0.0
    assert ours.augmentation.p_lowres == 0.0 and ours.augmentation.p_gamma_inverted == 0.0
    assert ours.amp == "auto" and nnunet.amp == "fp16"
