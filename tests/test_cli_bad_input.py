"""Every command that reads scans applies the checks of ``brats-seg check`` (one gate,
:func:`brats_seg.data.reading.checks.read_case`), on real cases broken four ways: a T2 affine 0.5 mm
off, a float label map holding 1.5, NaN in a sequence, a truncated ``.nii.gz``.

One case: exit 2, one stderr line naming the broken file, nothing written. A dataset with one
bad case among good ones: the good ones go through, the bad one is reported, exit 1. The real
cases are cropped to 48x48x32 voxels around the tumour to keep the runs short.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.models.registry import build_model

CASES = ("BraTS2021_00002", "BraTS2021_00003", "BraTS2021_00005")
TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "1", "--steps-per-epoch", "1",
        "--epochs", "1", "--workers", "0", "--threads", "1", "--no-progress"]


def _save(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(array, affine), str(path))


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asanyarray(img.dataobj), img.affine.copy()


def _shift_affine(path: Path) -> None:
    array, affine = _load(path)
    affine[0, 3] += 0.5  # 0.5 mm along the first axis
    _save(path, array, affine)


def _float_label(path: Path) -> None:
    array, affine = _load(path)
    array = array.astype(np.float32)
    array.flat[int(np.argmax(array > 0))] = 1.5
    _save(path, array, affine)


def _nan(path: Path) -> None:
    array, affine = _load(path)
    array = array.astype(np.float32)
    array[array.shape[0] // 2, array.shape[1] // 2, array.shape[2] // 2] = np.nan
    _save(path, array, affine)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BREAKS = {  # name: (file suffix of the scans' case, how), and the problem the line names
    "affine": ("t2", _shift_affine, "affine differs"),
    "float_label": ("seg", _float_label, "non-integer values (e.g. 1.5)"),
    "nan": ("t1ce", _nan, "1 NaN/Inf voxels"),
    "truncated": ("flair", _truncate, "corrupt or truncated"),
}


@pytest.fixture(scope="module")
def crops(shared_data, tmp_path_factory) -> Path:
    """Three real BraTS 2021 cases cropped to 48x48x32 around the tumour (affines follow the crop)."""
    root = tmp_path_factory.mktemp("real_crops")
    for case_id in CASES:
        src = shared_data / "brats2021" / case_id
        seg = nib.load(str(src / f"{case_id}_seg.nii.gz"))
        centre = np.argwhere(np.asanyarray(seg.dataobj) > 0).mean(0).astype(int)
        lo = [int(np.clip(c - s // 2, 0, n - s)) for c, s, n in zip(centre, (48, 48, 32), seg.shape)]
        box = tuple(slice(a, a + s) for a, s in zip(lo, (48, 48, 32)))
        (root / case_id).mkdir()
        for f in src.glob("*.nii.gz"):
            img = nib.load(str(f)).slicer[box]
            nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header), str(root / case_id / f.name))
    return root


def _dataset(crops: Path, root: Path, n: int) -> Path:
    for case_id in CASES[:n]:
        shutil.copytree(crops / case_id, root / case_id)
    return root


def _break(case: Path, kind: str) -> str:
    suffix, how, _ = BREAKS[kind]
    path = case / f"{case.name}_{suffix}.nii.gz"
    how(path)
    return path.name


def _one_line(capsys, command: str, *names: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"brats-seg {command}: error: ")
    assert all(n in err[0] for n in names), err[0]
    return err[0]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """An untrained tiny nnU-Net recorded as trained at 1 mm (the cases' spacing)."""
    torch.manual_seed(0)
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=(16, 16, 16),
                           spacing=(1.0, 1.0, 1.0))
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


SCAN_COMMANDS = {  # command -> argv builder (case or dataset folder, tmp folder, checkpoint) and its output folder
    "preprocess": (lambda d, t, c: ["preprocess", str(d), str(t / "out"), "--quiet", "--workers", "1"]),
    "train": (lambda d, t, c: ["train", str(d), "--out", str(t / "out"), *TINY, "--folds", "1"]),
    "pretrain": (lambda d, t, c: ["pretrain", str(d), "--out", str(t / "out"), *TINY]),
    "search": (lambda d, t, c: ["search", str(d), "--out", str(t / "out"), "--epochs", "1", "--warmup", "0", "--steps",
                                "1", "--patch", "16", "--threads", "1", "--no-progress"]),
    "predict": (lambda d, t, c: ["predict", str(d), "--model", str(c), "--out", str(t / "out"), "--no-progress"]),
    "show": (lambda d, t, c: ["show", str(d / CASES[0]) if (d / CASES[0]).is_dir() else str(d), "--out",
                              str(t / "out" / "x.png")]),
}


@pytest.mark.parametrize("kind", list(BREAKS))
@pytest.mark.parametrize("command", list(SCAN_COMMANDS))
def test_one_bad_case_is_one_line_and_exit_2(crops, tmp_path, ckpt, capsys, command, kind):
    if command == "predict" and kind == "float_label":
        pytest.skip("predict reads no label map")
    case = _dataset(crops, tmp_path / "data", 1) / CASES[0]
    name = _break(case, kind)
    assert main(SCAN_COMMANDS[command](case, tmp_path, ckpt)) == 2
    line = _one_line(capsys, command, name, BREAKS[kind][2])
    assert CASES[0] in line
    assert not _files(tmp_path / "out")


def test_predict_reads_no_label_map(crops, tmp_path, ckpt, capsys):
    case = _dataset(crops, tmp_path / "data", 1) / CASES[0]
    _break(case, "float_label")
    assert main(SCAN_COMMANDS["predict"](case, tmp_path, ckpt)) == 0
    assert (tmp_path / "out" / f"{CASES[0]}.nii.gz").is_file()


@pytest.mark.parametrize("command, kind", [("preprocess", "truncated"), ("train", "float_label"),
                                           ("pretrain", "nan"), ("predict", "affine"), ("search", "nan")])
def test_batch_skips_the_bad_case_and_exits_1(crops, tmp_path, ckpt, capsys, command, kind):
    data = _dataset(crops, tmp_path / "data", 3)
    name = _break(data / CASES[1], kind)
    assert main(SCAN_COMMANDS[command](data, tmp_path, ckpt)) == 1
    err = capsys.readouterr().err
    assert name in err and BREAKS[kind][2] in err
    out = tmp_path / "out"
    if command == "predict":
        assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{CASES[0]}.nii.gz", f"{CASES[2]}.nii.gz"]
    else:
        cache = out if command == "preprocess" else out / "cache"
        cached = sorted(p.name for p in cache.glob("*.json") if p.name != "dataset.json")
        assert cached == [f"{CASES[0]}.json", f"{CASES[2]}.json"], cached
    if command in ("train", "pretrain"):
        assert (out / "checkpoints" / "last.pt").is_file()
    if command == "search":
        assert (out / "genotype.json").is_file() and list(json.loads((out / "skipped.json").read_text())) == [CASES[1]]


# --------------------------------------------------------------------------- evaluate: label maps only

EVAL_BREAKS = {  # what evaluate reads: the reference label map (REF) and the prediction (PRED)
    "affine": ("pred", _shift_affine, "affine differs"),
    "float_label": ("ref", _float_label, "non-integer values (e.g. 1.5)"),
    "nan": ("pred", _nan, "1 NaN/Inf voxels"),
    "truncated": ("ref", _truncate, "corrupt or truncated"),
}


def _eval_inputs(crops: Path, tmp_path: Path, n: int, bad: str, kind: str) -> tuple[Path, Path, str]:
    """REF: ``n`` real cases; PRED: their reference label maps as predictions; case ``bad`` broken."""
    ref = _dataset(crops, tmp_path / "ref", n)
    pred = tmp_path / "pred"
    pred.mkdir()
    for case_id in CASES[:n]:
        shutil.copy(ref / case_id / f"{case_id}_seg.nii.gz", pred / f"{case_id}.nii.gz")
    which, how, _ = EVAL_BREAKS[kind]
    path = pred / f"{bad}.nii.gz" if which == "pred" else ref / bad / f"{bad}_seg.nii.gz"
    how(path)
    return pred, ref, path.name


@pytest.mark.parametrize("kind", list(EVAL_BREAKS))
def test_evaluate_one_bad_case(crops, tmp_path, capsys, kind):
    pred, ref, name = _eval_inputs(crops, tmp_path, 1, CASES[0], kind)
    assert main(["evaluate", str(pred), str(ref), "--out", str(tmp_path / "out"), "--no-plots", "--json"]) == 2
    _one_line(capsys, "evaluate", name, EVAL_BREAKS[kind][2])
    assert not _files(tmp_path / "out")


@pytest.mark.parametrize("kind", ["affine", "float_label"])
def test_evaluate_batch_scores_the_good_cases(crops, tmp_path, capsys, kind):
    pred, ref, name = _eval_inputs(crops, tmp_path, 3, CASES[1], kind)
    assert main(["evaluate", str(pred), str(ref), "--out", str(tmp_path / "out"), "--no-plots", "--json"]) == 1
    err = capsys.readouterr().err
    assert name in err and EVAL_BREAKS[kind][2] in err
    import csv

    with open(tmp_path / "out" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["case_id"] for r in rows if r["status"] == "ok"} == {CASES[0], CASES[2]}
    assert {r["case_id"] for r in rows if r["status"] == "error"} == {CASES[1]}
    assert all(float(r["dice"]) == 1.0 for r in rows if r["status"] == "ok" and r["dice"] not in ("", "nan"))


@pytest.mark.parametrize("backend, module, extra", [("onnx", "onnxruntime", "onnx"),
                                                    ("openvino", "openvino", "openvino")])
def test_missing_extra_is_one_line_naming_it(crops, tmp_path, ckpt, capsys, monkeypatch, backend, module, extra):
    """An optional back-end that is not installed: one line naming the extra to install, exit 2."""
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    case = _dataset(crops, tmp_path / "data", 1) / CASES[0]
    assert main([*SCAN_COMMANDS["predict"](case, tmp_path, ckpt), "--backend", backend]) == 2
    _one_line(capsys, "predict", f"needs {module}: pip install 'brats_seg[{extra}]'")
    assert not _files(tmp_path / "out")
