"""`brats-seg evaluate` through the real entry point: real cases against themselves, exit codes, --json."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from brats_seg.cli import main
from helpers import write_dataset, write_nifti


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["brats2018", "brats-gli"])
def test_real_cases_against_themselves(shared_data, tmp_path, capsys, dataset):
    pred = tmp_path / "pred"
    pred.mkdir()
    segs = sorted((shared_data / dataset).glob("*/*seg.nii.gz"))
    for seg in segs:
        shutil.copy(seg, pred / f"{seg.parent.name}.nii.gz")  # BraTS submission naming
    code = main(["evaluate", str(pred), str(shared_data / dataset), "--out", str(tmp_path / "out"), "--json",
                 "--lesionwise", "--workers", "2"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_scored"] == len(segs) and summary["missing"] == [] and summary["failed"] == []
    for region, stats in summary["metrics"].items():
        assert stats["dice"]["mean"] == 1.0 and stats["dice"]["q25"] == 1.0, region
        assert stats["hd95"]["mean"] == 0.0 and stats["hd95"]["q75"] == 0.0, region
        assert stats["lesion_dice"]["mean"] == 1.0 and stats["lesion_hd95"]["mean"] == 0.0, region
        assert stats["volume_ref_ml"]["mean"] > 0
    assert (tmp_path / "out" / "boxplots.png").stat().st_size > 1000


def test_exit_codes_and_table(tmp_path, capsys):
    root = write_dataset(tmp_path / "ref", "brats2023", n_cases=2, shape=(16, 16, 16))
    pred = tmp_path / "pred"
    write_nifti(pred / "BraTS-GLI-00001-000.nii.gz", np.zeros((16, 16, 16), np.uint8))
    code = main(["evaluate", str(pred), str(root), "--out", str(tmp_path / "out"), "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 0  # an empty prediction and a missing one are scored, not failures
    assert "2 of 2 cases scored" in captured.out and "WT" in captured.out
    assert "1 missing prediction(s) scored as empty: BraTS-GLI-00002-000" in captured.err
    (pred / "BraTS-GLI-00002-000.nii.gz").write_bytes(b"garbage")
    code = main(["evaluate", str(pred), str(root), "--out", str(tmp_path / "out"), "--no-plots"])
    assert code == 1
    assert "failed: case BraTS-GLI-00002-000" in capsys.readouterr().err
    code = main(["evaluate", str(pred), str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("brats-seg evaluate: error:") and err.count("\n") == 1


# --------------------------------------------------------------------------- BraTS 2024+ label sets (issue 15, item 3)

def _real_labels(shared_data, rel):
    import nibabel as nib

    img = nib.load(str(shared_data / rel))
    return np.rint(np.asarray(img.dataobj)).astype(np.uint8), img.affine


def _gli_post_treatment(shared_data):
    """The real BraTS-GLI map (1 NETC, 2 SNFH, 3 ET) with a resection cavity (4) beside the tumor."""
    labels, affine = _real_labels(shared_data, "brats-gli/BraTS-GLI-00000-000/BraTS-GLI-00000-000-seg.nii.gz")
    idx = np.argwhere(labels > 0)
    c = (idx.min(0) + idx.max(0)) // 2
    cavity = np.zeros(labels.shape, bool)
    cavity[c[0] - 30:c[0] - 20, c[1] - 5:c[1] + 5, c[2] - 5:c[2] + 5] = True
    labels[cavity & (labels == 0)] = 4
    return labels, affine


def _write_refs(root, maps, affine):
    for case_id, labels in maps.items():
        write_nifti(root / case_id / f"{case_id}-seg.nii.gz", labels, affine)  # the BraTS 2023+ layout
    return root


@pytest.mark.realdata
def test_gli_post_treatment_map_scores_et_on_label_3_and_rc_as_its_own_group(shared_data, tmp_path, capsys):
    labels, affine = _gli_post_treatment(shared_data)
    case = "BraTS-GLI-00000-100"
    ref = _write_refs(tmp_path / "ref", {case: labels}, affine)
    write_nifti(tmp_path / "pred" / f"{case}.nii.gz", labels, affine)
    assert main(["evaluate", str(tmp_path / "pred"), str(ref), "--out", str(tmp_path / "a"), "--json",
                 "--no-plots", "--lesionwise"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["label_schemes"] == ["brats2024-gli"] and s["challenges"] == ["gli"]
    assert list(s["metrics"]) == ["WT", "TC", "ET", "NETC", "SNFH", "RC"]  # the groups config gli scores
    assert all(m["dice"]["mean"] == 1.0 and m["lesion_dice"]["mean"] == 1.0 for m in s["metrics"].values())
    assert s["metrics"]["ET"]["volume_ref_ml"]["mean"] == pytest.approx(np.count_nonzero(labels == 3) / 1000)
    assert s["metrics"]["RC"]["volume_ref_ml"]["mean"] == pytest.approx(np.count_nonzero(labels == 4) / 1000)
    # a prediction of the tumor alone (no cavity): ET perfect (read as the 2015 scheme before, ET scored 0),
    # the cavity missed
    write_nifti(tmp_path / "pred" / f"{case}.nii.gz", np.where(labels == 4, 0, labels).astype(np.uint8), affine)
    assert main(["evaluate", str(tmp_path / "pred"), str(ref), "--out", str(tmp_path / "b"), "--json",
                 "--no-plots"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert [m[g]["dice"]["mean"] for g in ("WT", "TC", "ET", "NETC", "SNFH", "RC")] == [1, 1, 1, 1, 1, 0]
    assert m["RC"]["hd95"]["mean"] == 373.13


def _ped_2024(shared_data, case, cyst=True):
    """A real BraTS 2018 map relabelled to the 2024 PED set: 1 ET, 2 NETC, 3 CC (part of the core), 4 ED."""
    labels, affine = _real_labels(shared_data, f"brats2018/{case}/{case}_seg.nii.gz")
    ped = np.choose(labels, [0, 2, 4, 0, 1]).astype(np.uint8)  # 1 -> 2, 2 -> 4, 4 -> 1
    core = np.argwhere(ped == 2)
    if cyst:
        ped[tuple(core[: len(core) // 3].T)] = 3
    return ped, affine


@pytest.mark.realdata
def test_ped_2024_scored_with_its_groups_and_the_dataset_settles_the_scheme(shared_data, tmp_path, capsys):
    from brats_seg.evaluation.metrics import dice

    a, affine = _ped_2024(shared_data, "Brats18_TCIA01_201_1")
    b, _ = _ped_2024(shared_data, "Brats18_2013_3_1")
    b[b == 4] = 0  # no edema: values {0, 1, 2, 3} alone fit brats2023 too; the other case's 4 settles it
    refs = {"BraTS-PED-00001-000": a, "BraTS-PED-00002-000": b}
    ref = _write_refs(tmp_path / "ref", refs, affine)
    preds = {c: np.roll(r, 2, axis=0) for c, r in refs.items()}
    preds["BraTS-PED-00002-000"][10:14, 10:14, 10:14] = 4  # edema where the reference has none
    for c, p in preds.items():
        write_nifti(tmp_path / "pred" / f"{c}.nii.gz", p, affine)
    assert main(["evaluate", str(tmp_path / "pred"), str(ref), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "reference label scheme brats2024-ped" in out
    with open(tmp_path / "out" / "metrics.csv") as f:
        rows = {(r["case_id"], r["region"]): r for r in csv.DictReader(f)}
    groups = {"WT": [1, 2, 3, 4], "TC": [1, 2, 3], "ET": [1], "NETC": [2], "CC": [3], "ED": [4]}
    for c in refs:
        for g, values in groups.items():
            want = dice(np.isin(preds[c], values), np.isin(refs[c], values))
            assert float(rows[(c, g)]["dice"]) == pytest.approx(want, abs=1e-12), (c, g)
    assert 0 < float(rows[("BraTS-PED-00001-000", "ET")]["dice"]) < 1
    # empty reference, non-empty prediction: sensitivity 0, as the challenge's code gives it
    assert float(rows[("BraTS-PED-00002-000", "ED")]["sensitivity"]) == 0.0


def test_ambiguous_label_scheme_is_one_line_and_exit_2(tmp_path, capsys):
    """A PED dataset holding only 0-3: 1 is NETC (brats2023) or ET (brats2024-ped); nothing says which."""
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[3:9, 3:9, 3:9] = 2
    labels[4:7, 4:7, 4:7] = 1
    labels[5, 5, 5] = 3
    ref = _write_refs(tmp_path / "ref", {"BraTS-PED-00001-000": labels}, None)
    write_nifti(tmp_path / "pred" / "BraTS-PED-00001-000.nii.gz", labels)
    code = main(["evaluate", str(tmp_path / "pred"), str(ref), "--out", str(tmp_path / "out"), "--no-plots", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("brats-seg evaluate: error: ")
    assert "ambiguous between schemes brats2023, brats2024-ped" in err and "--label-scheme" in err
    for scheme, et in (("brats2024-ped", 1), ("brats2023", 3)):
        assert main(["evaluate", str(tmp_path / "pred"), str(ref), "--out", str(tmp_path / scheme), "--json",
                     "--label-scheme", scheme, "--no-plots"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["label_schemes"] == [scheme]
        assert s["metrics"]["ET"]["volume_ref_ml"]["mean"] == pytest.approx(np.count_nonzero(labels == et) / 1000)
