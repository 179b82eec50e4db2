"""What runs downstream of ``predict``, on imported models through the CLI (crops of two real shared cases):
bf16 against fp32, probabilities and uncertainty maps, test-time mirroring (nnU-Net's inside the network,
ours for a bundle). Oracles: labels are the source's write-back of the written probabilities; entropy is
that of the written probabilities; mirroring over all 8 flips makes the prediction of a flipped case the
flipped prediction."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from bundle_folder import write_bundle
from nnunet_folder import write_trained_folder

from brats_seg.cli import main

pytestmark = pytest.mark.realdata
CASE = "BraTS2021_00002"
BF16_DICE = 0.97
"""Stated floor of bf16 agreement with fp32 per region (measured on this crop: nnU-Net 0.997/0.994/0.986,
bundle 0.995/0.996/0.996 for WT/TC/ET; random weights put more voxels near the threshold than trained ones)."""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    return {"nnunet": write_trained_folder(root / "n", folds=(0, 1)),
            "nnunet_b": write_trained_folder(root / "nb", seed=5),
            "bundle": write_bundle(root, init_filters=8, roi=(32, 32, 32))}


def predict(case, model, out, *extra):
    assert main(["predict", str(case), "--model", *map(str, model), "--out", str(out), "--no-progress", *extra]) == 0
    maps = {k: np.asarray(nib.load(p).dataobj) for k, p in
            [("labels", out / f"{CASE}.nii.gz"), ("probabilities", out / f"{CASE}_probabilities.nii.gz"),
             ("uncertainty", out / f"{CASE}_uncertainty.nii.gz")] if p.exists()}
    return maps, json.loads((out / f"{CASE}.json").read_text())


def dice(a, b):
    return 1.0 if not (a.any() or b.any()) else 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def regions(labels):  # brats2021 values: WT = 1, 2, 4; TC = 1, 4; ET = 4
    return {"WT": labels > 0, "TC": np.isin(labels, (1, 4)), "ET": labels == 4}


@pytest.mark.parametrize("kind", ["nnunet", "bundle"])
def test_bf16_agrees_with_fp32(crops, models, tmp_path, kind):
    fp32, _ = predict(crops[CASE][0], [models[kind]], tmp_path / "fp32", "--precision", "fp32")
    bf16, side = predict(crops[CASE][0], [models[kind]], tmp_path / "bf16", "--precision", "bf16")
    assert side["settings"]["precision"] == "bf16"
    for g, r in regions(fp32["labels"]).items():
        assert dice(r, regions(bf16["labels"])[g]) >= BF16_DICE, g


@pytest.mark.parametrize("kind, scheme, values", [("nnunet", "msd", (1, 2, 3)), ("bundle", "brats2021", (2, 1, 4))])
def test_probabilities_and_entropy_are_what_the_labels_come_from(crops, models, tmp_path, kind, scheme, values):
    maps, _ = predict(crops[CASE][0], [models[kind]], tmp_path / "p", "--probabilities", "--uncertainty", "entropy",
                      "--label-scheme", scheme)  # the source's own scheme: its own write-back
    p, labels = maps["probabilities"], maps["labels"]  # (H, W, D, 3): WT, TC, ET
    assert p.shape == (*labels.shape, 3) and maps["uncertainty"].shape == p.shape
    expected = np.zeros(labels.shape, np.uint8)
    for c, value in enumerate(values):  # channel order, later channels overwriting (nnU-Net's, the bundle's)
        expected[p[..., c] > 0.5] = value
    assert np.array_equal(labels, expected) and labels.any()
    q = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    entropy = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    np.testing.assert_allclose(maps["uncertainty"], entropy, atol=2e-3)


def test_variance_across_imported_members(crops, models, tmp_path, capsys):
    maps, side = predict(crops[CASE][0], [models["nnunet"], models["nnunet_b"]], tmp_path / "v", "--uncertainty",
                         "variance", "--tta", "8")
    assert maps["uncertainty"].max() > 0 and side["confidence"]["scores"]["disagreement"] is not None
    capsys.readouterr()
    # one nnU-Net member averages its folds and mirrors inside its network: nothing to compare, one line
    assert main(["predict", str(crops[CASE][0]), "--model", str(models["nnunet"]), "--out", str(tmp_path / "x"),
                 "--uncertainty", "variance", "--tta", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inside each window, as nnU-Net does" in err[0]


def flipped_case(case_dir, root):
    """The case with every volume's voxel array reversed along its first axis (same affine)."""
    folder = root / CASE
    folder.mkdir(parents=True)
    for f in case_dir.glob("*.nii.gz"):
        img = nib.load(f)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[::-1].copy(), img.affine, img.header), folder / f.name)
    return folder


@pytest.mark.parametrize("kind, floor", [("nnunet", 0.98), ("bundle", 0.999)])
def test_tta_over_all_flips_is_flip_equivariant(crops, models, tmp_path, kind, floor):
    """The bundle's exactly (up to float order); nnU-Net's blending Gaussian peaks at patch // 2, half a voxel
    off the window's centre (its own compute_gaussian, kept), so window overlaps are not mirror-symmetric."""
    case = crops[CASE][0]
    flipped = flipped_case(case, tmp_path / "flipped")
    agreement = {}
    for tta in ("8", "0"):
        plain, side = predict(case, [models[kind]], tmp_path / f"a{tta}", "--tta", tta)
        mirrored, _ = predict(flipped, [models[kind]], tmp_path / f"b{tta}", "--tta", tta)
        assert side["settings"]["tta"] == int(tta)
        agreement[tta] = {g: dice(r, regions(mirrored["labels"][::-1])[g]) for g, r in regions(plain["labels"]).items()}
    assert all(d >= floor for d in agreement["8"].values()), agreement
    assert min(agreement["0"].values()) < min(agreement["8"].values())  # without mirroring: not equivariant
