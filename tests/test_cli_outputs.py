"""Issue 20 through the CLI: MEN-RT (one T1c channel, one GTV output, its released layout), PED (its four labels
written back with the PED values), and the refusals (one line, exit 2)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.models.registry import build_model
from brats_seg.outputs import default_outputs, region_outputs
from helpers import tiny_volumes, write_nifti

NAMES = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}
TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--epochs", "1", "--steps-per-epoch", "1",
        "--folds", "1", "--workers", "0", "--threads", "1", "--no-progress"]


def men_rt(root, n=2):
    """MEN-RT's released layout: ``<case>/<case>_t1c.nii.gz`` and ``<case>_gtv.nii.gz``."""
    for i in range(n):
        cid = f"BraTS-MEN-RT-{i:04d}-1"
        vols, label = tiny_volumes(seed=i)
        write_nifti(root / cid / f"{cid}_t1c.nii.gz", vols["t1ce"])
        write_nifti(root / cid / f"{cid}_gtv.nii.gz", (label > 0).astype(np.uint8))
    return root


def ped(root, n=2):
    """BraTS-PED cases holding all four PED labels (1 ET, 2 NETC, 3 CC, 4 ED)."""
    for i in range(n):
        cid = f"BraTS-PED-{i:05d}-000"
        vols, label = tiny_volumes(seed=i)
        lab = np.choose(label, [0, 2, 4, 0, 1]).astype(np.uint8)  # brats2021 1, 2, 4 -> NETC 2, ED 4, ET 1
        lab[(lab == 2) & (np.indices(lab.shape)[0] % 2 == 0)] = 3  # part of the core a cyst
        for name, v in vols.items():
            write_nifti(root / cid / f"{cid}-{NAMES[name]}.nii.gz", v)
        write_nifti(root / cid / f"{cid}-seg.nii.gz", lab)
    return root


def sure(path, outputs, bias, in_channels=4):
    """A network whose output channel k is ``bias[k]`` everywhere, saved with ``outputs``."""
    net = build_model("nnunet", preset="tiny", in_channels=in_channels, out_channels=len(bias), features=[2, 4],
                      strides=[1, 2])
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
        convs[-1].bias.copy_(torch.tensor(bias))
    return save_checkpoint(make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs,
                                           label_scheme=outputs.scheme, patch_size=(16, 16, 16), outputs=outputs,
                                           spacing=(1.0, 1.0, 1.0)),
                           path)


def test_men_rt_one_channel_one_output_trains_predicts_and_scores_gtv(tmp_path, capsys):
    data = men_rt(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), *TINY]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["channels"] == ["t1c"] and ckpt["label_scheme"] == "brats2024-men-rt"
    assert ckpt["outputs"]["groups"] == ["GTV"] and ckpt["model"]["kwargs"]["out_channels"] == 1
    out = tmp_path / "pred"
    assert main(["predict", str(data), "--model", str(run / "checkpoints" / "last.pt"), "--out", str(out),
                 "--no-progress"]) == 0
    labels = np.asanyarray(nib.load(str(out / "BraTS-MEN-RT-0000-1.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1}
    assert json.loads((out / "BraTS-MEN-RT-0000-1.json").read_text())["label_scheme"] == "brats2024-men-rt"
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), "--out", str(tmp_path / "ev"), "--json", "--no-plots",
                 "--workers", "1"]) == 0
    assert list(json.loads(capsys.readouterr().out)["metrics"]) == ["GTV"]


def test_ped_trains_its_four_labels_and_writes_ped_values(tmp_path, capsys):
    data = ped(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), *TINY]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["label_scheme"] == "brats2024-ped"
    assert ckpt["outputs"] == {"scheme": "brats2024-ped", "kind": "regions", "groups": ["ED", "NETC", "CC", "ET"],
                               "values": [4, 2, 3, 1]}
    # ED and CC on everywhere: written in channel order, CC (3) over ED (4), as nnU-Net's regions_class_order
    model = sure(tmp_path / "ped.pt", default_outputs("brats2024-ped"), [3.0, -3.0, 3.0, -3.0])
    out = tmp_path / "pred"
    assert main(["predict", str(data), "--model", str(model), "--out", str(out), "--tta", "2", "--probabilities",
                 "--uncertainty", "--no-progress"]) == 0
    labels = np.asanyarray(nib.load(str(out / "BraTS-PED-00000-000.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) == {0, 3}
    for kind in ("probabilities", "uncertainty"):  # one map per output group, under mirroring
        assert nib.load(str(out / f"BraTS-PED-00000-000_{kind}.nii.gz")).shape == (*labels.shape, 4)
    sidecar = json.loads((out / "BraTS-PED-00000-000.json").read_text())
    assert sidecar["result"]["model_outputs"]["groups"] == ["ED", "NETC", "CC", "ET"]
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), "--out", str(tmp_path / "ev"), "--json", "--no-plots",
                 "--workers", "1"]) == 0
    dice = {g: s["dice"]["mean"] for g, s in json.loads(capsys.readouterr().out)["metrics"].items()}
    assert list(dice) == ["WT", "TC", "ET", "NETC", "CC", "ED"]  # the PED config's groups: 3 is in TC and WT
    assert dice["ET"] == dice["NETC"] == dice["ED"] == 0 and dice["TC"] > 0 and dice["WT"] > 0


def _one_line_exit_2(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_refusals(tmp_path, capsys):
    data = ped(tmp_path / "data", n=1)
    err = _one_line_exit_2(capsys, ["train", str(data), "--out", str(tmp_path / "r1"), "--outputs", "WT", "RC",
                                    "--output-scheme", "brats2021", *TINY])
    assert "brats2021 cannot express RC" in err
    err = _one_line_exit_2(capsys, ["train", str(data), "--out", str(tmp_path / "r2"), "--outputs", "WT", "XX",
                                    *TINY])
    assert "unknown output group(s) XX" in err
    err = _one_line_exit_2(capsys, ["train", str(data), "--out", str(tmp_path / "r3"), "--outputs", "WT", "RC",
                                    *TINY])  # the PED data's scheme has no cavity
    assert "brats2024-ped cannot express RC" in err
    model = sure(tmp_path / "gli.pt", default_outputs("brats2024-gli"), [3.0, -3.0, -3.0, 3.0])
    err = _one_line_exit_2(capsys, ["predict", str(data), "--model", str(model), "--out", str(tmp_path / "p"),
                                    "--label-scheme", "brats2021", "--no-progress"])
    assert "cannot be written in label scheme brats2021 (it has no RC)" in err


def test_more_refusals(tmp_path, capsys):
    """A scheme no training case can express; ensemble members with different outputs."""
    data = tmp_path / "old"
    vols, label = tiny_volumes()
    for name, v in vols.items():
        write_nifti(data / "BraTS2021_00001" / f"BraTS2021_00001_{name}.nii.gz", v)
    write_nifti(data / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz", label)
    err = _one_line_exit_2(capsys, ["train", str(data), "--out", str(tmp_path / "r"), "--output-scheme",
                                    "brats2024-gli", *TINY])
    assert "no training case's label scheme expresses output(s) RC" in err
    gli = sure(tmp_path / "gli.pt", default_outputs("brats2024-gli"), [3.0, -3.0, -3.0, 3.0])
    gtv = sure(tmp_path / "gtv.pt", default_outputs("brats2024-men-rt"), [3.0])
    err = _one_line_exit_2(capsys, ["predict", str(data), "--model", str(gli), str(gtv), "--out",
                                    str(tmp_path / "p"), "--no-progress"])
    assert "ensemble members predict different outputs and share no region group" in err


def test_ensemble_of_different_outputs_predicts_their_common_groups_with_a_note(tmp_path, capsys):
    """A WT TC ET RC member and an old WT/TC/ET one: the ensemble predicts WT TC ET, and says so."""
    data = ped(tmp_path / "data", n=1)  # any four-sequence case
    gli = sure(tmp_path / "gli.pt", default_outputs("brats2024-gli"), [3.0, -3.0, -3.0, 9.0])  # WT and RC
    old = sure(tmp_path / "old.pt", region_outputs("brats2024-gli", ("WT", "TC", "ET")), [3.0, 0.0, -3.0])
    out = tmp_path / "pred"
    assert main(["predict", str(data), "--model", str(gli), str(old), "--out", str(out), "--label-scheme",
                 "brats2024-gli", "--no-progress"]) == 0
    assert "the ensemble predicts their common groups WT TC ET" in capsys.readouterr().err
    labels = np.asanyarray(nib.load(str(out / "BraTS-PED-00000-000.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) == {0, 2}  # WT on (SNFH), TC and ET off, the first member's RC dropped
    sidecar = json.loads((out / "BraTS-PED-00000-000.json").read_text())
    assert "common groups WT TC ET" in sidecar["result"]["ensemble_note"]


def test_postprocessing_rules_per_group():
    """Component rules on WT (inner groups follow) or a one-region model's GTV; RC left as thresholded."""
    from brats_seg.inference.postprocess import PostprocessConfig, probabilities_to_labels

    probs = np.zeros((4, 12, 12, 12), np.float32)
    probs[:2, 2:6, 2:6, 2:6] = 0.9  # a WT and TC blob of 64 voxels
    probs[:2, 9, 9, 9] = 0.9  # and a one-voxel WT speck
    probs[3, 8:11, 0:3, 0:3] = 0.9  # a 27-voxel cavity
    rule = PostprocessConfig(min_component_voxels=10)
    labels, record = probabilities_to_labels(probs, default_outputs("brats2024-gli"), rule)
    assert record == {"removed_wt_voxels": 1} and labels[9, 9, 9] == 0
    assert (labels == 1).sum() == 64 and (labels == 4).sum() == 27
    gtv, record = probabilities_to_labels(probs[:1], default_outputs("brats2024-men-rt"), rule)
    assert record == {"removed_gtv_voxels": 1} and gtv.sum() == 64


def test_label_outputs_predict_by_argmax_and_a_network_that_does_not_fit_is_refused(tmp_path, capsys):
    """A softmax label model (as nnU-Net label models import) writes the label of its largest channel; a
    checkpoint whose network has the wrong number of outputs for its recorded outputs is refused (exit 2)."""
    from brats_seg.outputs import label_outputs

    data = ped(tmp_path / "data", n=1)
    model = sure(tmp_path / "labels.pt", label_outputs("brats2024-ped"), [0.0, 1.0, 2.0, 5.0, 3.0])
    out = tmp_path / "pred"
    assert main(["predict", str(data), "--model", str(model), "--out", str(out), "--no-progress"]) == 0
    labels = np.asanyarray(nib.load(str(out / "BraTS-PED-00000-000.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) == {0, 3}  # CC wins inside the brain's box
    bad = sure(tmp_path / "bad.pt", default_outputs("brats2024-gli"), [3.0, -3.0, -3.0])
    err = _one_line_exit_2(capsys, ["predict", str(data), "--model", str(bad), "--out", str(tmp_path / "p"),
                                    "--no-progress"])
    assert "the network has 3 output channels; its outputs (regions WT TC ET RC) need 4" in err


def test_label_outputs_train_with_softmax_and_validate_per_label(tmp_path, capsys):
    """``--outputs labels --loss dice_ce``: a softmax over background and PED's four labels, validated per
    label, written back by argmax; refused without dice_ce."""
    data = ped(tmp_path / "data", n=2)
    run = tmp_path / "run"
    i = TINY.index("--folds")
    tiny = [*TINY[:i], "--folds", "2", *TINY[i + 2:]]  # one training case, one validated
    assert main(["train", str(data), "--out", str(run), *tiny, "--outputs", "labels",
                 "--loss", "dice_ce"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["outputs"] == {"scheme": "brats2024-ped", "kind": "labels", "groups": [
        "background", "enhancing tumor (ET)", "non-enhancing tumor (NETC)", "cystic component (CC)",
        "peritumoral edema (ED)"], "values": [0, 1, 2, 3, 4]}
    assert ckpt["model"]["kwargs"]["out_channels"] == 5
    log = (run / "log.csv").read_text().splitlines()[0]
    assert all(f"val_dice_label{v}" in log for v in (1, 2, 3, 4)) and "val_dice_label0" not in log
    assert main(["predict", str(data), "--model", str(run / "checkpoints" / "last.pt"), "--out",
                 str(tmp_path / "pred"), "--no-progress"]) == 0
    labels = np.asanyarray(nib.load(str(tmp_path / "pred" / "BraTS-PED-00000-000.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3, 4}
    err = _one_line_exit_2(capsys, ["train", str(data), "--out", str(tmp_path / "r"), *TINY, "--outputs", "labels"])
    assert "--outputs labels (softmax over the scheme's labels) trains with --loss dice_ce" in err
