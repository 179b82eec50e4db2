"""Named recipes: the registry, nnU-Net's numbers, precedence recipe < --config < flags, and a tiny
``brats-seg train --recipe nnunet`` run through the real entry point."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import yaml

import brats_seg
from brats_seg.checkpoint import load_checkpoint
from brats_seg.cli import main
from brats_seg.cli.train import add_arguments, config_from_args
from brats_seg.errors import ConfigError
from brats_seg.training import recipes as recipes_module
from brats_seg.training.recipes import RUN_KEYS, get_recipe, list_recipes, load_recipe
from brats_seg.training.train_config import TrainConfig, check_config, config_from_dict

NNUNET = {  # the numbers of nnU-Net v2's nnUNetTrainer and its BraTS plans, as README "Recipes" documents them
    "model": "nnunet", "preset": "base", "init": "he", "deep_supervision": True, "patch": (128, 128, 128),
    "batch_size": 2, "fg_fraction": 0.33, "loss": "dice_bce", "batch_dice": False, "optimizer": "sgd", "lr": 1e-2,
    "momentum": 0.99, "weight_decay": 3e-5, "schedule": "poly", "warmup": 0.0, "epochs": 1000,
    "steps_per_epoch": 250, "grad_clip": 12.0, "amp": "fp16", "folds": 5, "val_every": 50, "augment": True,
}
NNUNET_AUGMENTATION = {
    "pipeline": "nnunet", "p_rotate": 0.2, "rotate_degrees": 30.0, "p_scale": 0.2, "scale_range": (0.7, 1.4),
    "p_elastic": 0.0, "p_noise": 0.1, "noise_std": 0.1, "p_blur": 0.2, "blur_sigma": (0.5, 1.0),
    "p_brightness": 0.15, "brightness_range": (0.75, 1.25), "p_shift": 0.0, "p_contrast": 0.15,
    "contrast_range": (0.75, 1.25), "p_lowres": 0.25, "lowres_zoom": (0.5, 1.0), "p_gamma_inverted": 0.1,
    "p_gamma": 0.3, "gamma_range": (0.7, 1.5), "p_flip": 0.5,
}


@pytest.fixture
def recipe_dir(tmp_path, monkeypatch):
    """An empty recipe folder in place of the shipped one."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    monkeypatch.setattr(recipes_module, "RECIPE_DIR", folder)
    recipes_module.recipes.cache_clear()
    yield folder
    recipes_module.recipes.cache_clear()


def test_nnunet_recipe_has_nnunets_numbers(tmp_path):
    cfg = TrainConfig(recipe="nnunet", data=str(tmp_path), out=str(tmp_path / "run"))
    assert {k: getattr(cfg, k) for k in NNUNET} == NNUNET
    assert {k: getattr(cfg.augmentation, k) for k in NNUNET_AUGMENTATION} == NNUNET_AUGMENTATION
    assert cfg.preprocess.normalization == "zscore" and cfg.preprocess.crop and cfg.preprocess.spacing == (1, 1, 1)
    check_config(cfg)


def test_every_recipe_is_a_valid_config(tmp_path):
    names = [r["name"] for r in list_recipes()]
    assert "nnunet" in names and all(r["description"] and r["reference"] for r in list_recipes())
    assert brats_seg.list_recipes() == list_recipes()
    for name in names:
        assert not set(get_recipe(name).settings) & set(RUN_KEYS)
        check_config(TrainConfig(recipe=name, data=str(tmp_path), out=str(tmp_path / "run")))
    with pytest.raises(ConfigError, match="unknown recipe 'nnunett' \\(did you mean 'nnunet'\\?\\)"):
        TrainConfig(recipe="nnunett")


def test_python_arguments_beat_the_recipe():
    cfg = TrainConfig(recipe="nnunet", lr=0.5, epochs=3)
    assert (cfg.lr, cfg.epochs, cfg.optimizer, cfg.recipe) == (0.5, 3, "sgd", "nnunet")
    again = dataclasses.replace(cfg, batch_size=4)  # a copy keeps every value, the recipe is not re-applied
    assert (again.lr, again.epochs, again.batch_size, again.momentum) == (0.5, 3, 4, 0.99)
    assert TrainConfig().optimizer == "adamw" and TrainConfig().recipe is None  # no recipe: the defaults


def _args(*argv):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_precedence_recipe_then_yaml_then_flags(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("lr: 0.02\nepochs: 7\nbatch_size: 4\naugmentation: {p_flip: 0.0}\n")
    cfg = config_from_args(_args("data", "--out", "run", "--recipe", "nnunet", "--config", str(cfg_file),
                                 "--epochs", "3"))
    assert cfg.epochs == 3  # flag over YAML over recipe
    assert (cfg.lr, cfg.batch_size) == (0.02, 4)  # YAML over recipe
    assert (cfg.optimizer, cfg.momentum, cfg.init) == ("sgd", 0.99, "he")  # recipe over defaults
    assert cfg.augmentation.p_flip == 0.0 and cfg.augmentation.p_contrast == 0.15  # nested: merged key by key
    assert cfg.augmentation.pipeline == "nnunet" and cfg.recipe == "nnunet"
    # a recipe named inside the YAML works the same; the --recipe flag overrides it
    cfg_file.write_text("recipe: nnunet\nepochs: 7\n")
    assert config_from_dict(yaml.safe_load(cfg_file.read_text())).optimizer == "sgd"
    assert config_from_args(_args("data", "--out", "run", "--config", str(cfg_file))).epochs == 7
    assert config_from_args(_args("data", "--out", "run", "--recipe", "nnunet", "--init", "default")).init == "default"


def test_a_recipe_is_one_file(recipe_dir, tmp_path, capsys):
    (recipe_dir / "cpu.yaml").write_text("description: a CPU recipe\nreference: cross-validation\n"
                                         "settings: {preset: tiny, patch: [64, 64, 64], augmentation: {p_flip: 0}}\n")
    assert main(["train", "--list-recipes"]) == 0
    assert "cpu\n  a CPU recipe\n  source: cross-validation" in capsys.readouterr().out
    cfg = TrainConfig(recipe="cpu")
    assert (cfg.preset, cfg.patch, cfg.augmentation.p_flip, cfg.lr) == ("tiny", (64, 64, 64), 0, 1e-3)


@pytest.mark.parametrize("text, message", [
    ("settings: {lr: 0.1}\n", "a recipe is a mapping with exactly description, reference, settings"),
    ("description: x\nreference: y\nsettings: {out: runs/a}\n", "out belong(s) to one run"),
    ("description: x\nreference: y\nsettings: [1, 2]\n", "settings must be a mapping"),
    ("description: x\nreference: y\nsettings: {lrr: 0.1}\n", "unknown key(s) lrr"),
    ("description: x\nreference: y\nsettings: {augmentation: {pipeline: nnunet, p_elastic: 0.1}}\n",
     "pipeline 'nnunet' has no such transform"),
])
def test_bad_recipe_files_name_the_file(recipe_dir, tmp_path, text, message):
    (recipe_dir / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        check_config(TrainConfig(recipe="bad", data=str(tmp_path), out=str(tmp_path / "run")))
    assert "bad.yaml" in str(err.value) and message in str(err.value)
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(recipe_dir / "none.yaml")


def test_resume_keeps_the_run_config(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("epochs: 2\n")
    assert main(["train", "--out", str(run), "--resume", "--recipe", "nnunet"]) == 2
    assert "--recipe sets up a new run; a resumed run keeps its config.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_train_with_the_nnunet_recipe_through_the_cli(brats2021_case, tmp_path):
    """nnU-Net's recipe, made tiny by flags: nnU-Net's optimizer, init, loss and augmentation run end to end."""
    run = tmp_path / "run"
    assert main(["train", str(brats2021_case), "--recipe", "nnunet", "--out", str(run), "--preset", "tiny",
                 "--patch", "32", "--epochs", "2", "--steps-per-epoch", "2", "--folds", "1", "--workers", "0",
                 "--threads", "1", "--no-progress"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["recipe"] == "nnunet" and saved["augmentation"]["pipeline"] == "nnunet"
    assert (saved["epochs"], saved["patch"], saved["preset"]) == (2, [32, 32, 32], "tiny")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    group = ckpt["training"]["optimizer"]["param_groups"][0]
    assert (group["nesterov"], group["momentum"], group["weight_decay"]) == (True, 0.99, 3e-5)
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert float(rows[0]["lr"]) == pytest.approx(1e-2 * (1 - 1 / 4) ** 0.9)  # poly 0.9: the 2nd of 4 steps
    assert all(float(r["train_loss"]) == float(r["train_loss"]) for r in rows)  # finite
