"""``brats-seg predict`` through the real entry point: outputs, sidecars, bad cases, refused inputs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brats_seg.checkpoint import make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.conventions import get_scheme
from brats_seg.inference.batch_prediction import output_paths, sanitize_case_id, shard
from brats_seg.models.registry import build_model
from helpers import tiny_volumes, write_nifti

ROOT = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, patch=(16, 16, 16), bias=(1.0, 0.0, -1.0)) -> Path:
    """An untrained tiny nnU-Net; output biases set so every region appears somewhere."""
    torch.manual_seed(0)
    net = build_model("nnunet", preset="tiny", features=[2, 4], strides=[1, 2])
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1]
    with torch.no_grad():
        last.bias.copy_(torch.tensor(bias))
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=patch)
    return save_checkpoint(ckpt, path)


def write_case(root: Path, case_id: str, seed: int = 0) -> Path:
    vols, label = tiny_volumes(seed=seed)
    for name, v in vols.items():
        write_nifti(root / case_id / f"{case_id}_{name}.nii.gz", v)
    return root / case_id


def check_label_file(path: Path, reference: Path, scheme: str) -> np.ndarray:
    out, ref = nib.load(str(path)), nib.load(str(reference))
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.affine, ref.affine)
    assert out.get_data_dtype() == np.uint8
    labels = np.asanyarray(out.dataobj)
    assert labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) <= set(get_scheme(scheme).values)
    return labels


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_dataset_with_one_corrupt_case(tmp_path, ckpt, capsys):
    data = tmp_path / "data"
    for i, cid in enumerate(("BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00003")):
        write_case(data, cid, seed=i)
    bad = data / "BraTS2021_00002" / "BraTS2021_00002_t2.nii.gz"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    out = tmp_path / "out"
    rc = main(["predict", str(data), "--model", str(ckpt), "--out", str(out), "--no-progress",
               "--probabilities", "--uncertainty", "entropy"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "BraTS2021_00002" in err and "failed" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"BraTS2021_0000{i}{s}" for i in (1, 3) for s in
         (".nii.gz", ".json", "_probabilities.nii.gz", "_uncertainty.nii.gz")] + ["summary.json"])
    for cid in ("BraTS2021_00001", "BraTS2021_00003"):
        labels = check_label_file(out / f"{cid}.nii.gz", data / cid / f"{cid}_t1.nii.gz", "brats2021")
        assert len(np.unique(labels)) > 1
        probs = nib.load(str(out / f"{cid}_probabilities.nii.gz"))
        assert probs.shape == (24, 24, 20, 3) and probs.get_data_dtype() == np.float32
        side = json.loads((out / f"{cid}.json").read_text())
        assert side["settings"]["overlap"] == 0.5 and side["label_scheme"] == "brats2021"
        assert side["settings"]["members"][0]["model"]["name"] == "nnunet"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == 3 and list(summary["failed"]) == ["BraTS2021_00002"]


def test_missing_modality_and_label_scheme_choice(tmp_path, ckpt, capsys):
    data = tmp_path / "data"
    write_case(data, "BraTS2021_00001")
    write_case(data, "BraTS2021_00002")
    (data / "BraTS2021_00002" / "BraTS2021_00002_flair.nii.gz").unlink()
    out = tmp_path / "out"
    rc = main(["predict", str(data), "--model", str(ckpt), "--out", str(out), "--no-progress",
               "--label-scheme", "brats2023", "--tta", "2", "--overlap", "0.25"])
    assert rc == 1
    assert "BraTS2021_00002" in capsys.readouterr().err
    check_label_file(out / "BraTS2021_00001.nii.gz", data / "BraTS2021_00001" / "BraTS2021_00001_t1.nii.gz",
                     "brats2023")
    assert not (out / "BraTS2021_00002.nii.gz").exists()


def test_per_modality_files_weighted_ensemble_and_name_format(tmp_path, ckpt):
    vols, _ = tiny_volumes()
    files = {m: write_nifti(tmp_path / "in" / f"subj7-{m}.nii.gz", vols[a])
             for m, a in zip(("t1n", "t1c", "t2w", "t2f"), ("t1", "t1ce", "t2", "flair"))}
    other = tiny_checkpoint(tmp_path / "other.pt", bias=(-1.0, 2.0, 0.0))
    out = tmp_path / "out"
    args = ["predict", "--model", str(ckpt), str(other), "--weights", "1", "3", "--out", str(out), "--no-progress",
            "--name-format", "seg_{case_id}.nii.gz", "--uncertainty", "--label-scheme", "msd"]
    for m, f in files.items():
        args += [f"--{m}", str(f)]
    assert main(args) == 0
    check_label_file(out / "seg_subj7.nii.gz", files["t1n"], "msd")
    side = json.loads((out / "subj7.json").read_text())
    assert [m["weight"] for m in side["settings"]["members"]] == [0.25, 0.75]
    assert side["inputs"]["t2f"] == str(files["t2f"])
    unc = nib.load(str(out / "subj7_uncertainty.nii.gz")).get_fdata()
    assert unc.shape == (24, 24, 20, 3) and unc.max() > 0  # the two members disagree


def test_refusals_exit_2(tmp_path, ckpt, capsys):
    case = write_case(tmp_path / "data", "BraTS2021_00001")
    # a checkpoint that needs a pickle
    evil = tmp_path / "evil.pt"
    torch.save({"model": argparse.Namespace(name="x")}, evil)
    assert main(["predict", str(case), "--model", str(evil), "--out", str(tmp_path / "o")]) == 2
    assert "pickle" in capsys.readouterr().err
    # a valid torch file that is not ours
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert main(["predict", str(case), "--model", str(other), "--out", str(tmp_path / "o")]) == 2
    assert "not a brats_seg checkpoint" in capsys.readouterr().err
    # outputs into the input folder
    before = sorted(p.name for p in case.iterdir())
    assert main(["predict", str(case), "--model", str(ckpt), "--out", str(case)]) == 2
    assert "input folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "data"), "--model", str(ckpt), "--out", str(tmp_path / "data")]) == 2
    assert "input folder" in capsys.readouterr().err
    assert sorted(p.name for p in case.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [case.name]
    assert not (tmp_path / "o").exists()


def test_case_ids_are_sanitized(tmp_path):
    assert sanitize_case_id("../../etc/passwd") == "etc_passwd"
    assert sanitize_case_id("BraTS-GLI-00000-000") == "BraTS-GLI-00000-000"
    assert sanitize_case_id("..") == "case" and sanitize_case_id("a b/c") == "a_b_c"
    paths = output_paths(tmp_path, "../evil")
    assert all(tmp_path.resolve() in p.parents for p in paths.values())
    with pytest.raises(Exception, match="outside"):
        output_paths(tmp_path, "x", "../{case_id}.nii.gz")


def test_shard_partitions_cases():
    cases = list(range(11))
    parts = [shard(cases, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == cases and parts[1] == [1, 4, 7, 10]
    assert shard(cases, 0, 1) == cases


@pytest.mark.slow
def test_torchrun_two_processes_shard_and_summarize(tmp_path, ckpt):
    data = tmp_path / "data"
    for i in range(3):
        write_case(data, f"BraTS2021_0000{i}", seed=i)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "brats_seg.cli", "predict", str(data), "--model", str(ckpt), "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and sorted(summary["written"]) == [f"BraTS2021_0000{i}" for i in range(3)]
    assert not list(out.glob(".summary*"))


def test_each_shared_real_case(tmp_path, shared_data, capsys):
    """Every real case: a label file with exactly the input's shape and affine, uint8, in the scheme."""
    ckpt = tiny_checkpoint(tmp_path / "big.pt", patch=(160, 176, 160))
    for dataset, scheme in (("brats2018", "brats2021"), ("brats-gli", "brats2023")):
        out = tmp_path / dataset
        assert main(["predict", str(shared_data / dataset), "--model", str(ckpt), "--out", str(out),
                     "--overlap", "0", "--no-progress"]) == 0
        for case in sorted((shared_data / dataset).iterdir()):
            ref = sorted(case.glob("*t1*.nii.gz"))[0]
            labels = check_label_file(out / f"{case.name}.nii.gz", ref, scheme)
            assert (labels > 0).any()


def test_variance_of_one_probability_map_is_refused(tmp_path, ckpt, capsys):
    """One member without mirroring gives one map: its variance would be zeros, so it is refused in one line."""
    case = write_case(tmp_path / "data", "BraTS2021_00001")
    args = ["predict", str(case), "--model", str(ckpt), "--out", str(tmp_path / "o"), "--no-progress", "--uncertainty"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs several probability maps" in err[0]
    assert main([*args, "--tta", "2"]) == 0  # two mirrorings: two maps
