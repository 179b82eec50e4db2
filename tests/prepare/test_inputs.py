"""Inputs of ``brats-seg prepare``: DICOM series and volume files, refusals, and which is which.

Every bad input gets one line naming the file and the problem, and exit status 2, before
any heavy work starts (these tests take seconds)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from dicomhelp import axial_affine, head, series

from brats_seg.cli import main
from brats_seg.data.reading.image_io import Image
from brats_seg.errors import BratsSegError, CaseError
from brats_seg.prepare import required_sequences, run_cases, scan_set, scan_set_from_folder, scan_sources
from brats_seg.prepare.sequences import sequence_from_description
from brats_seg.prepare.series import read_series
from brats_seg.prepare.sitk_images import from_sitk, to_sitk
from helpers import write_nifti


def one_error_line(capsys, *fragments: str, command: str = "prepare") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"brats-seg {command}: error: "), err
    for f in fragments:
        assert f in err[0], err
    return err[0]


# --------------------------------------------------------------------------- DICOM

def test_dicom_series_is_read_with_its_geometry(tmp_path):
    s = read_series(series(tmp_path / "t1c", "AX T1 POST GD"))
    assert s.kind == "dicom" and s.image.shape == (32, 32, 12) and len(s.files) == 12
    np.testing.assert_allclose(s.image.affine, axial_affine(), atol=1e-4)
    np.testing.assert_allclose(s.image.array, head(seed=1), atol=0.5)
    assert s.tags["patient_id"] == "P1" and s.tags["series_description"] == "AX T1 POST GD"


@pytest.mark.parametrize("kind, fragment", [
    ("localizer", "a localizer series"),
    ("single", "a 2-D single slice"),
    ("uneven", "uneven slice spacing (3.00 to 6.00 mm"),
])
def test_bad_dicom_series_one_line_exit_2(tmp_path, capsys, kind, fragment):
    folder = tmp_path / kind
    if kind == "localizer":
        series(folder, "localizer", image_type="ORIGINAL\\PRIMARY\\LOCALIZER")
    elif kind == "single":
        series(folder, "AX T1 POST", shape=(32, 32, 1))
    else:  # one slice missing: positions 0, 3, ..., 15, 21, ...
        series(folder, "AX T1 POST", positions=[3.0 * k + (3.0 if k > 5 else 0.0) for k in range(12)])
    assert main(["prepare", "--t1c", str(folder), "--sequences", "t1c", "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, str(folder), fragment)
    assert not (tmp_path / "out").exists()


def test_series_of_different_patients_are_refused(tmp_path, capsys):
    a = series(tmp_path / "a", "AX T1 POST", patient_id="ALICE")
    b = series(tmp_path / "b", "AX FLAIR", patient_id="BOB", number=2)
    assert main(["prepare", "--t1c", str(a), "--t2f", str(b), "--sequences", "t1c", "t2f",
                 "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, "series of different patients", "'ALICE'", "'BOB'")


def test_study_folder_sequences_recognised_from_descriptions(tmp_path):
    study = tmp_path / "study"
    for n, desc in enumerate(["3-plane localizer", "AX T1 SE", "AX T1 POST GD", "T2 TSE AX", "AX T2 FLAIR",
                              "DWI b1000"], start=1):
        series(study / f"s{n}", desc, number=n)
    scans = scan_set_from_folder(study)
    assert {m: s.tags["series_description"] for m, s in scans.series.items()} == {
        "t1n": "AX T1 SE", "t1c": "AX T1 POST GD", "t2w": "T2 TSE AX", "t2f": "AX T2 FLAIR"}
    lines = scans.lines()
    assert lines[1].startswith("t1c <- AX T1 POST GD (series 3, 32x32x12, 1.00x1.00x3.00 mm)")
    assert "series description 'AX T1 POST GD'" in lines[1]
    assert sum(line.startswith("not used:") for line in lines) == 2  # the localizer and the DWI
    saved = json.loads(scans.save(tmp_path / "sequences.json").read_text())
    assert saved["sequences"]["t2f"]["dicom"]["series_description"] == "AX T2 FLAIR"


@pytest.mark.parametrize("description, expected", [
    ("Ax T1 MPRAGE +C", "t1c"), ("SAG 3D T1 FSPGR POST", "t1c"), ("t1_mprage_sag", "t1n"), ("AX FLAIR", "t2f"),
    ("t2_tirm_tra_dark-fl", "t2f"), ("AX T2 FSE", "t2w"), ("AX T2* GRE", None), ("DWI", None),
    ("ADC map", None), ("localizer", None), ("", None),
])
def test_sequence_rules(description, expected):
    assert sequence_from_description({"series_description": description}) == expected


def test_contrast_agent_tag_makes_a_t1_the_t1c():
    assert sequence_from_description({"series_description": "AX T1 SE", "contrast_agent": "GADAVIST"}) == "t1c"


# --------------------------------------------------------------------------- files

@pytest.mark.parametrize("axes, flips", [((0, 1, 2), (False, False, False)), ((2, 0, 1), (True, False, True))])
def test_any_orientation_keeps_its_geometry(axes, flips):
    array = head((20, 24, 16))
    affine = axial_affine((0.9, 0.9, 4.0))
    # reorder/flip the voxel axes and fix the affine so the world is unchanged
    perm = np.eye(4)[list(axes) + [3]].T
    arr = np.transpose(array, axes)
    aff = affine @ perm
    for ax, f in enumerate(flips):
        if f:
            arr = np.flip(arr, ax)
            flip = np.eye(4)
            flip[ax, ax], flip[ax, 3] = -1, arr.shape[ax] - 1
            aff = aff @ flip
    back = from_sitk(to_sitk(Image(np.ascontiguousarray(arr), aff)))
    np.testing.assert_allclose(back.affine, aff, atol=1e-6)
    np.testing.assert_array_equal(back.array, arr)


def test_sheared_affine_is_refused():
    aff = axial_affine()
    aff[0, 1] = 0.3
    with pytest.raises(CaseError, match="shears"):
        to_sitk(Image(head(), aff), name="x.nii.gz")


def test_unreadable_and_2d_files_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "t1c.nii.gz"
    bad.write_bytes(b"not a nifti")
    assert main(["prepare", "--t1c", str(bad), "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, str(bad), "unreadable")
    flat = write_nifti(tmp_path / "flat.nii.gz", head((32, 32, 1)))
    assert main(["prepare", "--t1c", str(flat), "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, str(flat), "a 2-D image")


def test_missing_sequence_named_in_one_line(tmp_path, capsys):
    folder = tmp_path / "case"
    for name in ("t1ce", "flair"):
        write_nifti(folder / f"{name}.nii.gz", head(), axial_affine())
    assert main(["prepare", str(folder), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys, "case case: missing sequence t1n, t2w", "t1c (t1ce.nii.gz)", "t2f (flair.nii.gz)")
    assert line.count("\n") == 0


def four_channel_checkpoint(path):
    from brats_seg.checkpoint import make_checkpoint, save_checkpoint
    from brats_seg.models.registry import build_model

    net = build_model("unet3d", in_channels=4, features=[4, 8], strides=[1, 2], deep_supervision=False)
    return save_checkpoint(make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs,
                                           patch_size=(32, 32, 32), spacing=(2.0, 2.0, 2.0)), path)


def test_segment_refuses_a_sequence_the_model_needs(tmp_path, capsys):
    """A model of the four sequences, a case with T1c and FLAIR: one line naming the missing ones (the
    predictor's own refusal), exit 2, nothing written; in a batch the case is listed and the exit status is 1."""
    folder = tmp_path / "case"
    for name in ("t1ce", "flair"):
        write_nifti(folder / f"{name}.nii.gz", head(), axial_affine())
    model = four_channel_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "o"
    assert main(["segment", str(folder), "--model", str(model), "--out", str(out)]) == 2
    one_error_line(capsys, "case case: missing t1n, t2w; the model was trained on complete input only",
                   command="segment")
    assert not out.exists()
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,t1c,t2f\nA,case/t1ce.nii.gz,case/flair.nii.gz\nB,case/t1ce.nii.gz,\n")
    assert main(["segment", str(csv), "--model", str(model), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "failed: case A: missing t1n, t2w; the model was trained on complete input only" in err
    assert "failed: case B: missing t1n, t2w, t2f;" in err


class _SubsetPredictor:
    """Stands for a predictor that takes subsets (``plan``, as in the missing-modalities work)."""

    channels = ("t1n", "t1c", "t2w", "t2f")

    class _Plan:
        def __init__(self, used):
            self.used = used

    def plan(self, available, case_id):
        if "t2f" not in available:
            raise CaseError(f"case {case_id}: missing t2f; the model was trained only for t1c+t2f and complete input")
        return self._Plan(tuple(c for c in ("t1c", "t2f") if c in available))


def test_the_predictor_decides_which_subset_it_takes(tmp_path):
    """The one hook (``required_sequences``): a predictor with ``plan`` decides (its sequences, or its
    own one-line refusal); any other needs all its channels."""
    folder = tmp_path / "case"
    for name in ("t1ce", "flair"):
        write_nifti(folder / f"{name}.nii.gz", head(), axial_affine())
    scans = scan_set_from_folder(folder)
    assert required_sequences(_SubsetPredictor(), scans) == ("t1c", "t2f")
    t1c_only = scan_set({"t1c": folder / "t1ce.nii.gz"}, "solo")
    with pytest.raises(CaseError, match="^case solo: missing t2f; the model was trained only for"):
        required_sequences(_SubsetPredictor(), t1c_only)

    class Complete:
        channels = ("T1", "T1ce", "T2", "FLAIR")  # any alias

    with pytest.raises(CaseError, match="^case case: missing sequence t1n, t2w "):
        required_sequences(Complete(), scans)
    report = run_cases(scan_sources(folder), lambda s: "done", required=lambda s: required_sequences(Complete(), s),
                       log=lambda line: None, strict=False)
    assert not report.done and report.failed["case"].startswith("case case: missing sequence t1n, t2w")


def test_sources_from_flags_csv_and_folder(tmp_path):
    folder = tmp_path / "scans"
    for name in ("t1", "t1c", "t2", "flair", "tumor_mask"):
        write_nifti(folder / f"{name}.nii.gz", head(), axial_affine())
    scans = scan_sources(folder)[0].read()
    assert sorted(scans.series) == ["t1c", "t1n", "t2f", "t2w"] and scans.how["t2f"] == "file name"
    assert scans.ignored == ["tumor_mask.nii.gz (file name names no sequence)"]
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,T1,T1ce,T2,FLAIR\nA,scans/t1.nii.gz,scans/t1c.nii.gz,scans/t2.nii.gz,scans/flair.nii.gz\n"
                   "B,scans/t1.nii.gz,missing.nii.gz,,\n")
    sources = scan_sources(csv)
    assert [s.case_id for s in sources] == ["A", "B"] and sources[0].read().how["t1c"] == "CSV"
    with pytest.raises(BratsSegError, match="either a folder/CSV or one path per sequence"):
        scan_sources(folder, {"t1c": folder / "t1c.nii.gz"})
    assert scan_set({"T1ce": folder / "t1c.nii.gz"}).series["t1c"].kind == ".nii.gz"
    flags = scan_sources(paths={"T1ce": folder / "t1c.nii.gz", "flair": folder / "flair.nii.gz"})  # as predict's
    assert [s.case_id for s in flags] == ["scans"] and sorted(flags[0].paths) == ["t1c", "t2f"]


def test_batch_goes_on_past_a_bad_case(tmp_path):
    folder = tmp_path / "scans"
    write_nifti(folder / "t1c.nii.gz", head(), axial_affine())
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,t1c\nbad,nowhere.nii.gz\ngood,scans/t1c.nii.gz\n")

    class Done:
        passed = True

    report = run_cases(scan_sources(csv), lambda scans: Done(), log=lambda line: None)
    assert list(report.done) == ["good"]
    assert report.failed == {"bad": f"{tmp_path / 'nowhere.nii.gz'}: no such file or folder"}


def test_prepare_csv_batch_exit_1_lists_failures(tmp_path, capsys):
    csv = tmp_path / "cases.csv"
    csv.write_text("case_id,t1c\nx,nowhere.nii.gz\ny,nothing.nrrd\n")
    assert main(["prepare", str(csv), "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "0 case(s) prepared" in err and "2 failed" in err and "nothing.nrrd: no such file" in err


def test_nifti_header_geometry_survives_reading(tmp_path):
    path = write_nifti(tmp_path / "t2.nii.gz", head(), axial_affine((0.9, 0.9, 5.5)))
    s = read_series(path)
    np.testing.assert_allclose(s.image.affine, nib.load(str(path)).affine)
    assert s.image.header is not None
