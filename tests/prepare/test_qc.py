"""A registration below the QC threshold is reported, exits 1, and writes no images."""

from __future__ import annotations

import json

import numpy as np
from dicomhelp import axial_affine, head

from brats_seg.cli import main
from brats_seg.prepare import MIN_SIMILARITY
from brats_seg.prepare.qc import focus_of
from helpers import tiny_volumes, write_nifti


def test_qc_failure_is_reported_and_writes_no_images(tmp_path, capsys):
    vols, _ = tiny_volumes(shape=(40, 48, 36))
    write_nifti(tmp_path / "scans" / "t1c.nii.gz", vols["t1ce"], axial_affine((2.0, 2.0, 2.0)))
    stale = tmp_path / "out" / "scans" / "scans-t1c.nii.gz"
    write_nifti(stale, head())  # an earlier run's image must not survive a failed one
    assert main(["prepare", str(tmp_path / "scans"), "--sequences", "t1c", "--out", str(tmp_path / "out"),
                 "--min-similarity", "0.99", "0.99", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "failed: case scans: registration failed QC: atlas sharpness" in err and "images not written" in err
    folder = tmp_path / "out" / "scans"
    record = json.loads((folder / "prepare.json").read_text())
    assert record["qc"] == {**record["qc"], "passed": False, "failed": ["atlas"],
                            "threshold": {"rigid": 0.99, "affine": 0.99}}
    assert (folder / "qc.png").stat().st_size > 0 and (folder / "t1c_to_atlas.tfm").exists()
    assert not stale.exists() and not list(folder.glob("*.nii.gz"))
    assert record["brain_extraction"]["method"] == "none"  # the tiny case is skull-stripped: detected


def test_the_picture_shows_where_the_mask_is():
    mask = np.zeros((20, 20, 10), bool)
    mask[2:5, 3:6, 7] = True
    mask[10, 10, 2] = True
    assert focus_of(mask) == (3, 4, 7) and focus_of(np.zeros((4, 4, 4), bool)) == (2, 2, 2)


def test_default_thresholds_are_documented():
    assert MIN_SIMILARITY == {"rigid": 0.35, "affine": 0.08}


def test_an_input_is_never_overwritten(tmp_path, capsys):
    source = write_nifti(tmp_path / "out" / "case" / "case-t1c.nii.gz", head(), axial_affine())
    before = source.read_bytes()
    assert main(["prepare", "--t1c", str(source), "--case-id", "case", "--sequences", "t1c",
                 "--out", str(tmp_path / "out")]) == 2
    assert "an input would be overwritten" in capsys.readouterr().err
    assert source.read_bytes() == before
