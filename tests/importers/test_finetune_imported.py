"""``brats-seg train --init-from`` a model trained elsewhere, through the CLI on real shared cases cropped small:
the imported network itself is fine-tuned (first-step loss = the source's loss on that batch), with the
source's sequences, normalization and outputs; the checkpoint loads with weights_only=True, records where it
came from and predicts through the imported pipeline. A source whose outputs the data cannot train: exit 2."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_folder import write_bundle
from nnunet_folder import write_trained_folder
from sitehelp import crop_cases
from sitehelp import first_step_losses as spy_first_step

from brats_seg.checkpoint import load_checkpoint
from brats_seg.cli import main
from brats_seg.importers import import_source
from brats_seg.inference.members import network_of
from brats_seg.training.optim import encoder_parameters

pytestmark = pytest.mark.realdata

# steps, not minutes: a time budget's learning rate reaches 0 when a loaded machine spends it before a step
RUN = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1", "--workers", "0", "--threads", "1",
       "--folds", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
    return crop_cases(shared_data, "brats2021", 2, tmp_path_factory.mktemp("ft") / "brats2021")


def first_step_losses(monkeypatch, source_ckpt) -> dict:
    """The source network's loss on the run's first batch, and the run's (see :func:`sitehelp.first_step_losses`)."""
    return spy_first_step(monkeypatch, lambda: network_of(source_ckpt))


def finetuned(run, source_ckpt, data, tmp_path):
    """The run's checkpoint (weights_only=True), checked against its source; predicts ``data``."""
    path = run / "checkpoints" / "last.pt"
    assert isinstance(torch.load(path, map_location="cpu", weights_only=True), dict)
    ckpt = load_checkpoint(path)
    for key in ("model", "channels", "outputs", "label_scheme", "preprocessing", "patch_size", "window_weights"):
        assert ckpt[key] == source_ckpt[key], key
    assert ckpt["provenance"]["imported"] == source_ckpt["provenance"]["imported"]
    assert any(not torch.equal(v, source_ckpt["state_dict"][k]) for k, v in ckpt["state_dict"].items())
    pred = tmp_path / "pred"
    assert main(["predict", str(data), "--model", str(path), "--out", str(pred), "--no-progress"]) == 0
    written = sorted(pred.glob("*.nii.gz"))
    assert len(written) == 2
    values = set(np.unique(np.asarray(nib.load(written[0]).dataobj)).tolist())
    assert values <= {0, 1, 2, 4}  # written in the cases' scheme (brats2021), as predicting with the source does
    return ckpt


def test_finetune_nnunet_folder(data, tmp_path, monkeypatch, capsys):
    folder = write_trained_folder(tmp_path / "nnunet", regions=True, folds=(0, 1))
    source = import_source(folder)
    first = first_step_losses(monkeypatch, source)
    run = tmp_path / "ft"
    assert main(["train", str(data), "--init-from", str(folder), "--out", str(run), *RUN]) == 0
    out = capsys.readouterr().out
    assert "its model, model_kwargs, patch, preprocess" in out and "loaded all" in out
    assert first["run"] == pytest.approx(first["source"], rel=1e-5, abs=1e-6)
    ckpt = finetuned(run, source, data, tmp_path)
    assert ckpt["provenance"]["fine_tuned"]["from"] == str(folder)
    assert ckpt["preprocessing"]["normalization"] == "nnunet_zscore_mask" and ckpt["window_weights"] == "nnunet"


def test_finetune_imported_bundle_checkpoint(data, tmp_path, monkeypatch):
    bundle = write_bundle(tmp_path, init_filters=8, roi=(32, 32, 32), dropout=None)
    imported = tmp_path / "bundle.pt"
    assert main(["models", "import", str(bundle), "--out", str(imported)]) == 0
    source = load_checkpoint(imported)
    first = first_step_losses(monkeypatch, source)
    run = tmp_path / "ft"
    recipe = tmp_path / "finetune.yaml"  # the recipe, its encoder frozen for the first of 2 one-step epochs
    recipe.write_text("recipe: finetune\nfreeze_encoder_epochs: 1\nepochs: 2\n")
    assert main(["train", str(data), "--config", str(recipe), "--init-from", str(imported), "--out", str(run),
                 *RUN[2:]]) == 0
    assert first["run"] == pytest.approx(first["source"], rel=1e-5, abs=1e-6)
    ckpt = finetuned(run, source, data, tmp_path)
    assert ckpt["channels"] == ["t1c", "t1n", "t2w", "t2f"]  # the bundle's order, not ours
    assert ckpt["provenance"]["fine_tuned"]["from"] == str(imported)
    assert ckpt["provenance"]["config"]["freeze_encoder_epochs"] == 1  # the frozen encoder: SegResNet's
    net = network_of(ckpt)
    frozen = [n for n, p in net.named_parameters() if any(p is q for q in encoder_parameters(net))]
    assert frozen and {n.split(".")[1] for n in frozen} == {"convInit", "down_layers"}


def test_finetune_refuses_outputs_the_data_cannot_train(data, tmp_path, capsys):
    folder = write_trained_folder(tmp_path / "labels", regions=False)  # softmax labels of msd (1, 2, 3)
    assert main(["train", str(data), "--init-from", str(folder), "--out", str(tmp_path / "x"), *RUN]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "msd" in err and "brats2021" in err
    assert not (tmp_path / "x" / "config.yaml").exists()


def test_finetune_refuses_data_without_the_source_sequences(data, tmp_path, capsys):
    lacking = tmp_path / "no_t1c"
    shutil.copytree(data, lacking, ignore=shutil.ignore_patterns("*_t1ce.nii.gz"))
    folder = write_trained_folder(tmp_path / "m")  # T1, T1ce, T2, Flair
    assert main(["train", str(lacking), "--init-from", str(folder), "--out", str(tmp_path / "x"), *RUN]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "t1c" in err, err
    assert not (tmp_path / "x" / "config.yaml").exists()


def test_finetune_softmax_labels_on_cases_of_their_scheme(shared_data, tmp_path, monkeypatch):
    """Softmax labels named as BraTS 2023's (1 necrotic core, 2 edema, 3 enhancing) train on BraTS 2023 cases with
    Dice + CE over those labels."""
    cases = crop_cases(shared_data, "brats2023", 2, tmp_path / "brats2023")
    folder = write_trained_folder(tmp_path / "labels", regions=False)
    dataset = json.loads((folder / "dataset.json").read_text())
    dataset["labels"] = {"background": 0, "necrotic core": 1, "edema": 2, "enhancing tumor": 3}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    source = import_source(folder)
    assert source["outputs"]["kind"] == "labels" and source["outputs"]["scheme"] == "brats2023"
    first = first_step_losses(monkeypatch, source)
    run = tmp_path / "ft"
    assert main(["train", str(cases), "--init-from", str(folder), "--out", str(run), *RUN]) == 0
    assert first["run"] == pytest.approx(first["source"], rel=1e-5, abs=1e-6)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["outputs"] == source["outputs"] and ckpt["provenance"]["config"]["loss"] == "dice_ce"
    assert main(["predict", str(cases), "--model", str(run / "checkpoints" / "last.pt"), "--out",
                 str(tmp_path / "pred"), "--no-progress"]) == 0
