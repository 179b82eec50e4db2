"""Models trained elsewhere through the CLI: ``models import``, ``predict``/``export`` with a folder,
an ensemble with one of our checkpoints, and the refusals (one line, exit 2)."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from nnunet_folder import RESENC, write_trained_folder

from brats_seg.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.models.registry import build_model

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_trained_folder(tmp_path_factory.mktemp("nnunet"), network=RESENC, regions=True, folds=(0, 1))


@pytest.fixture
def case_dir(crops):
    return crops["BraTS2021_00002"][0]


def labels(path):
    return np.asarray(nib.load(path).dataobj)


def test_import_then_predict_equals_predict_from_folder(tmp_path, folder, case_dir, capsys):
    out = tmp_path / "model.pt"
    assert main(["models", "import", str(folder), "--folds", "0", "1", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)  # weights_only=True
    record = ckpt["provenance"]["imported"]
    assert record["framework"] == "nnU-Net" and record["folds"] == ["0", "1"]
    assert set(record["files"]) == {"dataset.json", "plans.json", "fold_0/checkpoint_final.pth",
                                    "fold_1/checkpoint_final.pth"}
    assert all(len(h) == 64 for h in record["files"].values())
    assert ckpt["channels"] == ["t1n", "t1c", "t2w", "t2f"] and ckpt["label_scheme"] == "msd"
    assert ckpt["outputs"] == {"scheme": "msd", "kind": "regions", "groups": ["WT", "TC", "ET"], "values": [1, 2, 3]}
    for model, name in ((out, "a"), (folder, "b")):
        assert main(["predict", str(case_dir), "--model", str(model), "--out", str(tmp_path / name),
                     "--label-scheme", "msd", "--tta", "8", "--no-progress"]) == 0
    a, b = (labels(tmp_path / n / "BraTS2021_00002.nii.gz") for n in "ab")
    assert np.array_equal(a, b) and set(np.unique(a)) == {0, 1, 2, 3}
    # the case's own scheme (brats2021): the same regions with BraTS 2021 values
    assert main(["predict", str(case_dir), "--model", str(out), "--out", str(tmp_path / "c"), "--tta", "8",
                 "--no-progress"]) == 0
    c = labels(tmp_path / "c" / "BraTS2021_00002.nii.gz")
    assert set(np.unique(c)) <= {0, 1, 2, 4}
    # our nested rule (ET only inside TC inside WT) there, nnU-Net's overwrite in msd: nested is a subset
    assert np.all(a[c == 4] == 3) and np.all(a[c > 0] > 0) and (c > 0).any()


def test_export_onnx_with_parity_and_onnx_backend(tmp_path, folder, case_dir, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(folder), "--format", "onnx", "--out", str(out), "--tolerance", "1e-2"]) == 0
    assert out.stat().st_size > 0 and "largest difference" in capsys.readouterr().err
    for backend in ("torch", "onnx"):
        assert main(["predict", str(case_dir), "--model", str(folder), "--backend", backend, "--tta", "8",
                     "--out", str(tmp_path / backend), "--no-progress"]) == 0
    a, b = (labels(tmp_path / n / "BraTS2021_00002.nii.gz") for n in ("torch", "onnx"))
    assert (a != b).mean() < 1e-3


def test_ensemble_with_own_checkpoint(tmp_path, folder, case_dir):
    torch.manual_seed(0)
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    own = save_checkpoint(make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs,
                                          patch_size=(16, 16, 16)), tmp_path / "own.pt")
    assert main(["predict", str(case_dir), "--model", str(folder), str(own), "--weights", "3", "1",
                 "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    assert labels(tmp_path / "p" / "BraTS2021_00002.nii.gz").shape == (56, 48, 40)


def _refused(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_refusals(tmp_path, folder, case_dir, capsys):
    out = str(tmp_path / "m.pt")
    broken = tmp_path / "b" / folder.name
    shutil.copytree(folder, broken)
    (broken / "dataset.json").unlink()
    _refused(capsys, ["models", "import", str(broken), "--out", out], "dataset.json", "missing")
    assert not (tmp_path / "m.pt").exists()
    (broken / "dataset.json").write_bytes((folder / "dataset.json").read_bytes())
    (broken / "plans.json").unlink()
    _refused(capsys, ["models", "import", str(broken), "--out", out], "plans.json", "missing")
    _refused(capsys, ["models", "import", str(folder), "--folds", "3", "--out", out], "fold_3", "checkpoint_final.pth")
    _refused(capsys, ["predict", str(case_dir), "--model", str(folder), "--folds", "7", "--out", out], "fold_7")
    v1 = tmp_path / "v1" / folder.name
    shutil.copytree(folder, v1)
    (v1 / "fold_0" / "model_final_checkpoint.model").write_bytes(b"\x80\x04N.")
    _refused(capsys, ["models", "import", str(v1), "--out", out], "nnU-Net v1", "nnUNetv2_convert_old_nnUNet_dataset")
    evil = tmp_path / "evil" / folder.name
    shutil.copytree(folder, evil)
    weights = torch.load(folder / "fold_0" / "checkpoint_final.pth", weights_only=False)
    weights["init_args"]["callback"] = shutil.rmtree  # a pickled function: must not be loaded
    torch.save(weights, evil / "fold_0" / "checkpoint_final.pth")
    _refused(capsys, ["models", "import", str(evil), "--out", out], "refused", "shutil.rmtree")
    plans = json.loads((folder / "dataset.json").read_text())
    plans["channel_names"]["0"] = "PET"
    odd = tmp_path / "odd" / folder.name
    shutil.copytree(folder, odd)
    (odd / "dataset.json").write_text(json.dumps(plans))
    _refused(capsys, ["models", "import", str(odd), "--out", out], "'PET'", "--channels")
    assert main(["models", "import", str(odd), "--channels", "t1", "t1ce", "t2", "flair", "--out", out]) == 0
    plans["labels"] = {"background": 0, "a": [1, 2], "b": [1], "c": [3]}
    (odd / "dataset.json").write_text(json.dumps(plans))
    _refused(capsys, ["models", "import", str(odd), "--out", out, "--channels", "t1", "t1ce", "t2", "flair"],
             "not the WT, TC and ET of a known label scheme")
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "metadata.json").write_text("{}")
    _refused(capsys, ["predict", str(case_dir), "--model", str(bundle), "--out", out], "no inference.json")
