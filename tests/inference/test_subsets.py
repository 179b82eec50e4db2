"""Cases with missing sequences through ``brats-seg predict`` and ``check``: a dropout-trained model takes
every one of the 15 subsets; a model trained on complete input refuses in one line and the batch goes on;
ensemble members that cannot take a subset are left out with a note."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.conventions import MODALITIES
from brats_seg.data.subsets import all_subsets, subset_name
from brats_seg.errors import CheckpointError
from brats_seg.models.registry import build_model
from helpers import tiny_volumes, write_nifti

SUFFIX = dict(zip(MODALITIES, ("t1", "t1ce", "t2", "flair")))  # BraTS 2017-2021 file names


@pytest.fixture(scope="module")
def dropout_ckpt(tmp_path_factory) -> Path:
    """A tiny U-Net trained a few steps with modality dropout over all 15 subsets."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from trainhelp import write_toy_cache

    from brats_seg import TrainConfig, train

    root = tmp_path_factory.mktemp("dropout")
    write_toy_cache(root / "cache", n=3)
    train(TrainConfig(data=str(root / "cache"), out=str(root / "run"), model="unet3d", preset="tiny", epochs=1,
                      steps_per_epoch=6, patch=(16, 16, 16), folds=1, workers=0, threads=1, lr=1e-2, progress=False,
                      modality_dropout=1.0))
    return root / "run" / "checkpoints" / "best.pt"


def untrained_ckpt(path: Path, subsets=None) -> Path:
    """A tiny nnU-Net recording ``subsets`` (None: complete input only); biases so every region appears."""
    torch.manual_seed(0)
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    with torch.no_grad():
        [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1].bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16),
                           spacing=(1.0, 1.0, 1.0), subsets=subsets)
    return save_checkpoint(ckpt, path)


def write_case(root: Path, case_id: str, without=(), seed=0) -> Path:
    vols, _ = tiny_volumes(seed=seed)
    for m in MODALITIES:
        if m not in without:
            write_nifti(root / case_id / f"{case_id}_{SUFFIX[m]}.nii.gz", vols[SUFFIX[m]])
    return root / case_id


def sidecar(out: Path, case_id: str) -> dict:
    return json.loads((out / f"{case_id}.json").read_text())


def test_dropout_model_predicts_every_subset_from_files(tmp_path, dropout_ckpt, capsys):
    files = write_case(tmp_path / "in", "subj")
    assert len(load_checkpoint(dropout_ckpt)["trained_subsets"]) == 15
    for subset in all_subsets():
        out = tmp_path / subset_name(subset)
        args = ["predict", "--model", str(dropout_ckpt), "--out", str(out), "--no-progress", "--case-id", "subj"]
        for m in subset:
            args += [f"--{m}", str(files / f"subj_{SUFFIX[m]}.nii.gz")]
        assert main(args) == 0, capsys.readouterr().err
        labels = nib.load(str(out / "subj.nii.gz"))
        assert labels.shape == (24, 24, 20) and labels.get_data_dtype() == np.uint8
        seq = sidecar(out, "subj")["sequences"]
        assert seq["used"] == list(subset) and seq["available"] == list(subset) and seq["unused"] == []
        assert seq["filled"] == [m for m in MODALITIES if m not in subset] and seq["left_out"] == []
        assert list(sidecar(out, "subj")["inputs"]) == list(subset)


def test_complete_model_refuses_in_one_line_and_the_batch_goes_on(tmp_path, capsys):
    ckpt = untrained_ckpt(tmp_path / "complete.pt")
    data = tmp_path / "data"
    write_case(data, "BraTS2021_00001")
    write_case(data, "BraTS2021_00002", without=("t2f",))
    write_case(data, "BraTS2021_00003", seed=2)
    out = tmp_path / "out"
    assert main(["predict", str(data), "--model", str(ckpt), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    refusals = [line for line in err.splitlines() if "BraTS2021_00002" in line and "failed" not in line]
    assert refusals == ["brats-seg predict: case BraTS2021_00002: missing t2f; the model was trained on complete"
                        " input only (train with --modality-dropout to segment cases with missing sequences)"]
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["BraTS2021_00001.nii.gz", "BraTS2021_00003.nii.gz"]
    assert json.loads((out / "summary.json").read_text())["failed"].keys() == {"BraTS2021_00002"}
    # --zero-fill runs it anyway, and says the subset was not trained
    assert main(["predict", str(data / "BraTS2021_00002"), "--model", str(ckpt), "--out", str(tmp_path / "zf"),
                 "--no-progress", "--zero-fill"]) == 0
    seq = sidecar(tmp_path / "zf", "BraTS2021_00002")["sequences"]
    assert seq["filled"] == ["t2f"] and seq["members"][0]["trained"] is False


def test_dataset_and_csv_with_missing_files(tmp_path, dropout_ckpt):
    data = tmp_path / "data"
    write_case(data, "BraTS2021_00001", without=("t1n", "t2w"))
    write_case(data, "BraTS2021_00002", without=("t1c",), seed=1)
    out = tmp_path / "out"
    assert main(["check", str(data)]) == 1
    assert main(["check", str(data), "--allow-missing", "t1n,t2w"]) == 1  # t1c is not allowed to be missing
    assert main(["check", str(data), "--allow-missing", "--json"]) == 0
    assert main(["predict", str(data), "--model", str(dropout_ckpt), "--out", str(out), "--no-progress"]) == 0
    assert sidecar(out, "BraTS2021_00001")["sequences"]["used"] == ["t1c", "t2f"]
    assert sidecar(out, "BraTS2021_00002")["sequences"]["filled"] == ["t1c"]
    rows = ["case_id,t1,t1ce,t2,flair"]
    for cid, empty in (("a", "t1ce"), ("b", "flair")):
        cells = [("" if s == empty else str(data / "BraTS2021_00002" / f"BraTS2021_00002_{s}.nii.gz"))
                 for s in ("t1", "t1ce", "t2", "flair")]
        rows.append(",".join([cid, *cells]))
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n")
    csv_out = tmp_path / "csv_out"
    # row a: an empty t1ce cell is a missing sequence; row b names a t1ce file that does not exist: a broken case
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(dropout_ckpt), "--out", str(csv_out),
                 "--no-progress"]) == 1
    assert sidecar(csv_out, "a")["sequences"]["used"] == ["t1n", "t2w", "t2f"]
    failed = json.loads((csv_out / "summary.json").read_text())["failed"]
    assert list(failed) == ["b"] and "BraTS2021_00002_t1ce.nii.gz" in failed["b"]


def test_check_reports_an_allowed_missing_sequence_as_a_finding(tmp_path, capsys):
    write_case(tmp_path / "data", "BraTS2021_00001", without=("t2w",))
    assert main(["check", str(tmp_path / "data"), "--allow-missing", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["ok"] and rec["errors"] == [] and rec["missing"] == ["t2w"]
    assert rec["findings"] == ["missing modality t2w (allowed; found t1n, t1c, t2f)"]
    assert main(["check", str(tmp_path / "data"), "--allow-missing"]) == 0
    assert "note: missing modality t2w" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "data"), "--allow-missing", "t2x"]) == 2


def test_ensemble_leaves_out_members_that_cannot_take_the_subset(tmp_path, dropout_ckpt, capsys):
    complete = untrained_ckpt(tmp_path / "complete.pt")
    data = tmp_path / "data"
    write_case(data, "BraTS2021_00001", without=("t1n",))
    out = tmp_path / "out"
    assert main(["predict", str(data), "--model", str(dropout_ckpt), str(complete), "--out", str(out),
                 "--no-progress"]) == 0
    note = f"brats-seg predict: note: case BraTS2021_00001: {complete} left out: missing t1n; it was trained on" \
           " complete input only"
    assert note in capsys.readouterr().err.splitlines()
    seq = sidecar(out, "BraTS2021_00001")["sequences"]
    assert [m["name"] for m in seq["members"]] == [str(dropout_ckpt)]
    assert seq["left_out"] == [{"name": str(complete), "reason": "missing t1n; it was trained on complete input only"}]
    # a member trained only for t1c+t2f (and all four) takes t1c+t2f of a case that also has t2w
    partial = untrained_ckpt(tmp_path / "partial.pt", subsets=[["t1c", "t2f"], list(MODALITIES)])
    assert main(["predict", str(data), "--model", str(partial), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    seq = sidecar(tmp_path / "p", "BraTS2021_00001")["sequences"]
    assert seq["used"] == ["t1c", "t2f"] and seq["unused"] == ["t2w"] and seq["filled"] == ["t1n", "t2w"]
    # no member can: one line (a single case: exit 2, as for any bad case)
    write_case(tmp_path / "d2", "BraTS2021_00002", without=("t1c", "t1n"))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "d2"), "--model", str(partial), str(complete), "--out",
                 str(tmp_path / "none"), "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "brats-seg predict: error: case BraTS2021_00002: missing t1n, t1c; none of the 2 ensemble members"
        " was trained without them"]


def test_checkpoints_without_subsets_mean_complete_input(tmp_path):
    path = untrained_ckpt(tmp_path / "c.pt")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == 2 and ckpt["trained_subsets"] == [list(MODALITIES)]
    old = {k: v for k, v in ckpt.items() if k not in ("trained_subsets", "required_channels")}
    torch.save(old, tmp_path / "old.pt")  # as format-2 checkpoints written before subsets were recorded
    from brats_seg.checkpoint import required_channels_of, trained_subsets_of

    loaded = load_checkpoint(tmp_path / "old.pt")
    assert trained_subsets_of(loaded) == [MODALITIES] and required_channels_of(loaded) == MODALITIES
    for bad in ({"trained_subsets": [["t1c", "pd"]], "required_channels": []},
                {"trained_subsets": [["t1c"], ["t2f"]], "required_channels": ["t1c"]},
                {"trained_subsets": [[]], "required_channels": []}):
        torch.save({**old, **bad}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / "bad.pt")
