"""Training on a BraTS 2024 GLI post-treatment set: by default the network learns the resection cavity (RC, an
output of its own, issue 20); ``--outputs WT TC ET`` keeps the older three outputs, which read the cavity as
background, and a WT/TC/ET model writes no RC label (predictions are in brats2024-gli, 0-3)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.models.registry import build_model
from helpers import tiny_volumes, write_nifti

NAMES = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}


def gli_post_treatment(root, n=2):
    for i in range(n):
        cid = f"BraTS-GLI-{i + 1:05d}-100"
        vols, label = tiny_volumes(seed=i)
        gli = np.choose(label, [0, 1, 2, 0, 3]).astype(np.uint8)  # brats2021 1, 2, 4 -> NETC 1, SNFH 2, ET 3
        brain = vols["t1"] != 0
        gli[:6][brain[:6] & (gli[:6] == 0)] = 4  # a resection cavity at one end of the brain
        for name, v in vols.items():
            write_nifti(root / cid / f"{cid}-{NAMES[name]}.nii.gz", v)
        write_nifti(root / cid / f"{cid}-seg.nii.gz", gli)
    return root


def test_train_learns_the_cavity_by_default(tmp_path, capsys):
    data = gli_post_treatment(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
                 "--epochs", "1", "--steps-per-epoch", "1", "--folds", "1", "--workers", "0", "--threads", "1",
                 "--no-progress"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["label_scheme"] == "brats2024-gli" and ckpt["regions"] == ["WT", "TC", "ET", "RC"]
    assert ckpt["outputs"] == {"scheme": "brats2024-gli", "kind": "regions", "groups": ["WT", "TC", "ET", "RC"],
                               "values": [2, 1, 3, 4]}
    assert ckpt["model"]["kwargs"]["out_channels"] == 4
    assert "outputs: regions WT TC ET RC written back as brats2024-gli values 2 1 3 4" in capsys.readouterr().out


def test_train_with_three_outputs_reads_the_cavity_as_background_and_predicts_no_rc(tmp_path, capsys):
    data = gli_post_treatment(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
                 "--epochs", "1", "--steps-per-epoch", "1", "--folds", "1", "--workers", "0", "--threads", "1",
                 "--outputs", "WT", "TC", "ET", "--no-progress"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["label_scheme"] == "brats2024-gli" and ckpt["regions"] == ["WT", "TC", "ET"]  # RC is no target

    # a network sure of ET everywhere, saved with the GLI post-treatment scheme: labels 3, never 4
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
        convs[-1].bias.fill_(3.0)
    sure = save_checkpoint(make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs,
                                           label_scheme="brats2024-gli", patch_size=(16, 16, 16)), tmp_path / "et.pt")
    for model in (run / "checkpoints" / "last.pt", sure):
        out = tmp_path / f"pred_{model.stem}"
        assert main(["predict", str(data), "--model", str(model), "--out", str(out), "--no-progress"]) == 0
        for case in sorted(data.iterdir()):
            labels = np.asanyarray(nib.load(str(out / f"{case.name}.nii.gz")).dataobj)
            assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3}
            # the ids say GLI: brats2023 or brats2024-gli, which read 1-3 alike
            assert json.loads((out / f"{case.name}.json").read_text())["label_scheme"] in ("brats2023",
                                                                                            "brats2024-gli")
    # a case whose name says nothing is written in the checkpoint's scheme
    case = data / "BraTS-GLI-00001-100"
    files = [a for m in NAMES.values() for a in (f"--{m}", str(case / f"{case.name}-{m}.nii.gz"))]
    out = tmp_path / "pred_files"
    assert main(["predict", *files, "--case-id", "subj1", "--model", str(sure), "--out", str(out),
                 "--no-progress"]) == 0
    labels = np.asanyarray(nib.load(str(out / "subj1.nii.gz")).dataobj)
    assert json.loads((out / "subj1.json").read_text())["label_scheme"] == "brats2024-gli"
    assert set(np.unique(labels).tolist()) == {0, 3} and (labels == 3).sum() > 1000


def test_mixed_2021_and_2024_training_masks_the_cavity_of_2021_cases(tmp_path, capsys):
    """brats2021 cases beside brats2024-gli ones (one cache): RC is unknown for them (masked out of their loss),
    said in the run log; the cases that label it train it."""
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset
    from brats_seg.data.reading.layouts.discovery import discover_cases

    gli = gli_post_treatment(tmp_path / "gli")
    vols, label = tiny_volumes(seed=5)
    for name, v in vols.items():
        write_nifti(tmp_path / "old" / "BraTS2021_00001" / f"BraTS2021_00001_{name}.nii.gz", v)
    write_nifti(tmp_path / "old" / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz", label)
    cache = tmp_path / "cache"
    preprocess_dataset(discover_cases(gli) + discover_cases(tmp_path / "old"), cache, workers=1, progress=False)
    run = tmp_path / "run"
    args = ["train", str(cache), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
            "--epochs", "1", "--steps-per-epoch", "2", "--folds", "1", "--workers", "0", "--threads", "1",
            "--no-progress"]
    assert main(args) == 2  # two schemes: which one predictions are written in must be said
    assert "several label schemes" in capsys.readouterr().err
    assert main([*args, "--output-scheme", "brats2024-gli"]) == 0
    out = capsys.readouterr().out
    assert ("outputs: RC is unknown for 1 of 3 training case(s) (their scheme cannot express it): masked out of"
            " their loss (BraTS2021_00001)") in out
    assert load_checkpoint(run / "checkpoints" / "last.pt")["outputs"]["groups"] == ["WT", "TC", "ET", "RC"]


def test_softmax_loss_trains_wt_tc_et_on_post_treatment_data(tmp_path):
    """``--loss dice_ce`` (softmax over the WT/TC/ET classes) keeps three outputs, whatever the scheme's default."""
    data = gli_post_treatment(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--patch", "16",
                 "--epochs", "1", "--steps-per-epoch", "1", "--folds", "1", "--workers", "0", "--threads", "1",
                 "--loss", "dice_ce", "--no-progress"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["outputs"]["groups"] == ["WT", "TC", "ET"] and ckpt["model"]["kwargs"]["out_channels"] == 4
    assert main(["predict", str(data), "--model", str(run / "checkpoints" / "last.pt"), "--out",
                 str(tmp_path / "pred"), "--no-progress"]) == 0
