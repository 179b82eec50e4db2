"""evaluate_folder: pairing across layouts and schemes, missing and bad predictions, summaries, plots."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from brats_seg.conventions import convert_labels
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.errors import BratsSegError
from brats_seg.evaluation.pairing import case_id_of, find_label_maps, pair_cases
from brats_seg.evaluation.report import describe, evaluate_folder, read_metrics_csv
from brats_seg.evaluation.scoring import prediction_scheme
from helpers import tiny_affine, write_dataset, write_nifti


def _refs(tmp_path, layout="brats2021", n=3):
    root = write_dataset(tmp_path / "ref", layout, n_cases=n, shape=(16, 16, 16))
    return root, {c.case_id: np.asarray(nib.load(str(c.label)).dataobj) for c in discover_cases(root)}


def _rows(result, case_id):
    return {r["region"]: r for r in result.rows if r["case_id"] == case_id}


def test_case_ids_from_file_names():
    from pathlib import Path

    assert case_id_of(Path("Brats18_X_seg.nii.gz")) == "Brats18_X"
    assert case_id_of(Path("BraTS-GLI-00000-000-seg.nii.gz")) == "BraTS-GLI-00000-000"
    assert case_id_of(Path("BraTS-GLI-00000-000.nii.gz")) == "BraTS-GLI-00000-000"
    assert case_id_of(Path("case.nrrd")) == "case"


def test_every_prediction_layout_is_paired(tmp_path):
    root, labels = _refs(tmp_path, n=4)
    ids = sorted(labels)
    pred = tmp_path / "pred"
    write_nifti(pred / f"{ids[0]}.nii.gz", labels[ids[0]])
    write_nifti(pred / f"{ids[1]}_seg.nii.gz", labels[ids[1]])
    write_nifti(pred / f"{ids[2]}-seg.nii.gz", labels[ids[2]])
    write_nifti(pred / ids[3] / "prediction.nii.gz", labels[ids[3]])
    (pred / ids[3] / "._prediction.nii.gz").write_bytes(b"\0" * 4096)  # macOS metadata: skipped as layouts skip it
    write_nifti(pred / "other_case.nii.gz", labels[ids[0]])
    res = evaluate_folder(pred, root, tmp_path / "out", progress=False, plots=False)
    assert res.ok and res.summary["missing"] == [] and res.summary["extra_predictions"] == ["other_case"]
    assert {r["status"] for r in res.rows} == {"ok"}
    assert all(r["dice"] == 1.0 and r["hd95"] == 0.0 for r in res.rows)


def test_suffix_pairing_for_number_only_names(tmp_path):
    refs = find_label_maps(tmp_path)  # empty folder
    assert refs.files == {}
    from brats_seg.evaluation.pairing import LabelMaps

    preds = LabelMaps({"00001-000": tmp_path / "a.nii.gz", "zzz": tmp_path / "z.nii.gz"})
    refs = LabelMaps({"BraTS-GLI-00001-000": tmp_path / "r1.nii.gz", "BraTS-GLI-00002-000": tmp_path / "r2.nii.gz"})
    p = pair_cases(preds, refs)
    assert [(c, None if f is None else f.name) for c, f, _ in p.pairs] == [
        ("BraTS-GLI-00001-000", "a.nii.gz"), ("BraTS-GLI-00002-000", None)]
    assert p.missing == ["BraTS-GLI-00002-000"] and p.extra_predictions == ["zzz"]


def test_missing_and_bad_predictions(tmp_path):
    root, labels = _refs(tmp_path, n=4)
    ids = sorted(labels)
    pred = tmp_path / "pred"
    write_nifti(pred / f"{ids[0]}.nii.gz", labels[ids[0]])
    (pred / f"{ids[1]}.nii.gz").write_bytes(b"not a nifti file at all")
    write_nifti(pred / f"{ids[2]}.nii.gz", labels[ids[2]][:-1])  # wrong shape
    # ids[3] missing
    res = evaluate_folder(pred, root, tmp_path / "out", progress=False, workers=2)
    s = res.summary
    assert not res.ok
    assert s["missing"] == [ids[3]]
    assert [f["case_id"] for f in s["failed"]] == [ids[1], ids[2]]
    assert ids[1] in s["failed"][0]["error"] and "corrupt or truncated file" in s["failed"][0]["error"]
    assert "prediction has shape 15x16x16, reference" in s["failed"][1]["error"]
    assert s["n_cases"] == 4 and s["n_scored"] == 2
    missing = _rows(res, ids[3])
    assert missing["WT"]["status"] == "missing" and missing["WT"]["dice"] == 0.0
    assert missing["WT"]["hd95"] == 373.13
    # statistics over the two scored cases: one perfect, one empty
    assert s["metrics"]["WT"]["dice"]["mean"] == pytest.approx(0.5)
    assert s["metrics"]["WT"]["dice"]["n"] == 2
    assert s["metrics"]["WT"]["hd95"]["median"] == pytest.approx(373.13 / 2)
    with open(tmp_path / "out" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok", "missing", "error"}
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Missing predictions" in md and ids[3] in md and "Failed cases" in md
    assert (tmp_path / "out" / "boxplots.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["missing"] == [ids[3]]


def test_prediction_in_another_scheme(tmp_path):
    root, labels = _refs(tmp_path, n=2)
    pred = tmp_path / "pred"
    for cid, lab in labels.items():
        write_nifti(pred / f"{cid}.nii.gz", convert_labels(lab, "brats2021", "msd"))
    res = evaluate_folder(pred, root, tmp_path / "out", pred_scheme="msd", progress=False, plots=False)
    assert res.ok and all(r["dice"] == 1.0 for r in res.rows)
    # without the scheme, msd values 1, 2, 3 are ambiguous (brats2023 or msd): the case fails and says so
    res = evaluate_folder(pred, root, tmp_path / "out2", progress=False, plots=False)
    assert not res.ok and "--pred-scheme" in res.failures[0]["error"]
    # brats2023 predictions (3 = ET) against brats2021 references are detected
    for cid, lab in labels.items():
        write_nifti(pred / f"{cid}.nii.gz", convert_labels(lab, "brats2021", "brats2023"))
    res = evaluate_folder(pred, root, tmp_path / "out3", pred_scheme="brats2023", progress=False, plots=False)
    assert res.ok and all(r["dice"] == 1.0 for r in res.rows)


def test_flat_reference_folder_and_spacing(tmp_path):
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[2:6, 2:6, 2:6] = 4
    pred = np.roll(ref, 1, axis=2)
    aff = tiny_affine((1.0, 1.0, 2.5))
    write_nifti(tmp_path / "ref" / "c1_seg.nii.gz", ref, aff)
    write_nifti(tmp_path / "pred" / "c1.nii.gz", pred, aff)
    res = evaluate_folder(tmp_path / "pred", tmp_path / "ref", tmp_path / "out", ref_scheme="brats2021",
                          progress=False, plots=False, lesionwise=True, challenge="met")
    et = _rows(res, "c1")["ET"]
    assert et["hd95"] == pytest.approx(2.5)  # one voxel along the 2.5 mm axis
    assert et["volume_ref_ml"] == pytest.approx(64 * 2.5 / 1000)
    assert et["lesions_tp"] == 1 and et["lesion_dice"] == pytest.approx(0.75)


def test_workers_give_the_same_result(tmp_path):
    root, labels = _refs(tmp_path, n=3)
    pred = tmp_path / "pred"
    for cid, lab in labels.items():
        write_nifti(pred / f"{cid}.nii.gz", np.roll(lab, 1, axis=0))
    one = evaluate_folder(pred, root, tmp_path / "o1", progress=False, plots=False, lesionwise=True)
    two = evaluate_folder(pred, root, tmp_path / "o2", progress=False, plots=False, lesionwise=True, workers=2)
    assert one.rows == two.rows
    assert read_metrics_csv(tmp_path / "o1" / "metrics.csv")[0]["dice"] == pytest.approx(one.rows[0]["dice"])


def test_prediction_scheme_and_describe():
    assert prediction_scheme({0, 1, 2}, None, "brats2023") == "brats2023"  # fits the reference's
    assert prediction_scheme({0, 1, 2, 4}, "brats2021", "brats2023") == "brats2021"
    # 4 does not fit brats2023; alone, {0, 1, 2, 4} fits brats2021 and the 2024+ schemes (4 = RC or ED)
    with pytest.raises(BratsSegError, match="--pred-scheme"):
        prediction_scheme({0, 1, 2, 4}, None, "brats2023")
    d = describe([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert d == {"mean": 2.5, "std": pytest.approx(np.std([1, 2, 3, 4], ddof=1)), "median": 2.5, "q25": 1.75,
                 "q75": 3.25, "n": 4}
    assert describe([])["mean"] is None


def test_bad_folders(tmp_path):
    with pytest.raises(BratsSegError, match="no such reference folder"):
        evaluate_folder(tmp_path / "p", tmp_path / "nope", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BratsSegError, match="no reference label maps"):
        evaluate_folder(tmp_path / "empty", tmp_path / "empty", tmp_path / "o")
    with pytest.raises(BratsSegError, match="hd95 mode"):
        evaluate_folder(tmp_path / "empty", tmp_path / "empty", tmp_path / "o", hd95_mode="mean")
