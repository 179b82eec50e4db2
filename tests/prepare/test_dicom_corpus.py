"""DICOM as hospitals export it (issue 24): each variant of ``tests/dicom_corpus.py`` (a crop of a
real case written with pydicom) is read to exactly the source's voxels and geometry, or refused
in one line naming the series and the reason (exit 2), and a study folder goes on past a refused
series."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_corpus import Source, Writer, write_study
from test_inputs import one_error_line

from brats_seg.cli import main
from brats_seg.errors import CaseError
from brats_seg.prepare import scan_set_from_folder
from brats_seg.prepare.series import read_series

pytestmark = pytest.mark.realdata

EXACT = ["explicit little endian", "implicit little endian", "explicit big endian", "deflate", "RLE lossless",
         "JPEG 2000 lossless", "JPEG-LS lossless", "Enhanced MR multi-frame", "random order, meaningless names",
         "nested folders", "DICOMDIR (pydicom FileSet)", "rescale slope 0.5 / intercept 10",
         "oblique (20 and -12 degrees)", "no Frame of Reference UID", "non-ASCII patient name (ISO_IR 192)"]
REFUSED = ["gantry tilt 12 degrees", "missing slice", "uneven spacing", "4-D diffusion", "3-plane localizer"]
SYNTAX = {"implicit little endian": "1.2.840.10008.1.2", "explicit big endian": "1.2.840.10008.1.2.2",
          "deflate": "1.2.840.10008.1.2.1.99", "RLE lossless": "1.2.840.10008.1.2.5",
          "JPEG 2000 lossless": "1.2.840.10008.1.2.4.90", "JPEG-LS lossless": "1.2.840.10008.1.2.4.80"}


def test_the_corpus_holds_every_variant(corpus):
    assert sorted(corpus) == sorted(EXACT + REFUSED)


@pytest.mark.parametrize("name", EXACT)
def test_variant_read_exactly(corpus, name):
    variant = corpus[name]
    files = sorted(p for p in variant.folder.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    if name in SYNTAX:  # the files really are in that transfer syntax
        assert str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID) == SYNTAX[name]
    series = read_series(variant.folder)
    assert series.kind == "dicom"
    assert series.image.shape == variant.source.values.shape
    assert np.array_equal(series.image.array, variant.source.values)  # voxel values exactly
    np.testing.assert_allclose(series.image.affine, variant.source.ras_affine(), atol=1e-5)  # DS precision


def test_non_ascii_patient_name_kept(corpus):
    assert read_series(corpus["non-ASCII patient name (ISO_IR 192)"].folder).tags["patient_name"] == \
        "Müller^Zoë=ミュラー"


@pytest.mark.parametrize("name", REFUSED)
def test_variant_refused_in_one_line_exit_2(corpus, name, tmp_path, capsys):
    variant = corpus[name]
    assert main(["prepare", "--t1c", str(variant.folder), "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys, variant.refusal, "series ")
    assert "'" in line  # the series is named by number and description
    assert not (tmp_path / "o").exists()


def test_study_folder_with_mixed_series(volume, tmp_path):
    """Pre/post T1, T2, FLAIR, a localizer, an ADC map and a 4-D diffusion in ONE folder, random names."""
    scans = scan_set_from_folder(write_study(volume, tmp_path))
    assert {m: s.tags["series_number"] for m, s in scans.series.items()} == \
        {"t1n": "3", "t1c": "9", "t2w": "4", "t2f": "5"}
    assert np.array_equal(scans.series["t1c"].image.array, volume)
    assert len(scans.ignored) == 3 and all("names no sequence we use" in line for line in scans.ignored)


def _study(volume, root, descriptions, **positions):
    w = Writer(root)
    axial = Source(volume, np.eye(3), np.zeros(3))
    for n, desc in enumerate(descriptions, start=1):
        w.save(w.slices(axial, desc, n, positions=positions.get(desc)), f"study/SE{n:03d}/x", names="random", seed=n)
    return root / "study"


def test_pre_and_post_t1_without_contrast_tag_are_asked_about(volume, tmp_path, capsys):
    study = _study(volume, tmp_path, ["AX T1", "AX T1", "AX FLAIR"])
    out = str(tmp_path / "o")
    assert main(["prepare", str(study), "--sequences", "t1c", "--out", out]) == 2
    one_error_line(capsys, "2 T1 series and no contrast tag", "series 1 'AX T1'", "series 2 'AX T1'",
                   "--pick t1n=SERIES_NUMBER --pick t1c=SERIES_NUMBER")
    scans = scan_set_from_folder(study, picks={"t1n": "1", "t1c": "2"})
    assert scans.series["t1c"].tags["series_number"] == "2" and scans.how["t1c"] == "--pick t1c"
    assert scans.series["t1n"].tags["series_number"] == "1"


def test_two_t1c_candidates_are_asked_about(volume, tmp_path, capsys):
    study = _study(volume, tmp_path, ["AX T1 POST GD", "SAG T1 MPRAGE +C", "AX FLAIR"])
    assert main(["prepare", str(study), "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "2 series could be t1c", "series 1 'AX T1 POST GD'", "series 2 'SAG T1 MPRAGE +C'",
                   "--pick t1c=SERIES_NUMBER")
    assert main(["prepare", str(study), "--pick", "t1c=9", "--sequences", "t1c", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "--pick t1c=9: 0 series have that number (series numbers: 1, 2, 3)")


def test_a_refused_series_does_not_stop_the_others(volume, tmp_path, capsys):
    gap = [np.array([0, 0, 3.0 * k + (3.0 if k > 4 else 0.0)]) for k in range(volume.shape[2])]
    study = _study(volume, tmp_path, ["AX T1 POST GD", "AX T2 FLAIR"], **{"AX T2 FLAIR": gap})
    scans = scan_set_from_folder(study)
    assert list(scans.series) == ["t1c"]
    assert any(line.startswith("refused as t2f: series 2 'AX T2 FLAIR'") for line in scans.ignored)
    scans.require(("t1c",))
    with pytest.raises(CaseError, match=r"series 2 'AX T2 FLAIR' in .*: uneven slice spacing"):
        scans.require(("t1c", "t2f"))


def test_study_with_a_localizer_in_subfolders(volume, tmp_path):
    """A study folder whose series (and a 3-plane localizer) sit in nested subfolders with meaningless names."""
    w = Writer(tmp_path)
    axial = Source(volume, np.eye(3), np.zeros(3))
    planes = [np.eye(3), np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])]
    w.save(w.slices(axial, "localizer", 1, orientation=[planes[k % 2] for k in range(volume.shape[2])]),
           "study/DICOM/S0001", names="random", seed=1)
    w.save(w.slices(axial, "AX T1 MPRAGE POST GD", 5), "study/DICOM/S0002/x", names="random", seed=2, subfolders=2)
    scans = scan_set_from_folder(tmp_path / "study")
    assert list(scans.series) == ["t1c"] and np.array_equal(scans.series["t1c"].image.array, volume)
    assert scans.ignored == [f"series 1 'localizer' in {tmp_path / 'study/DICOM/S0001'}: its description names no"
                             " sequence we use"]


def test_pick_flags_repeat_or_list(volume, tmp_path, capsys):
    """``--pick t1n=1 --pick t1c=2`` (as the refusal line says) and ``--pick t1n=1 t1c=2`` mean the same."""
    import argparse

    from brats_seg.cli.prepare import add_arguments, picks

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for argv in (["--pick", "t1n=1", "--pick", "t1c=2"], ["--pick", "t1n=1", "t1c=2"]):
        assert picks(parser.parse_args(["x", *argv, "--out", "o"]).pick) == {"t1n": "1", "t1c": "2"}
    assert main(["prepare", "x", "--pick", "t1c", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "--pick t1c: expected SEQ=SERIES_NUMBER")


def test_enhanced_frames_stored_top_down(volume, tmp_path):
    """Frames stored from the highest slice down: read in that order, with the slice axis pointing down,
    so every voxel keeps its place in the patient (the volume flipped along z, the affine likewise)."""
    w = Writer(tmp_path)
    source = Source(volume, np.eye(3), np.zeros(3))
    ds = w.enhanced(source, "AX T1 MPRAGE POST GD", 3)
    ds.PerFrameFunctionalGroupsSequence = list(ds.PerFrameFunctionalGroupsSequence)[::-1]
    ds.PixelData = np.ascontiguousarray(np.transpose(volume, (2, 1, 0))[::-1]).tobytes()
    (tmp_path / "mf").mkdir()
    ds.save_as(tmp_path / "mf" / "MF0001", enforce_file_format=True)
    series = read_series(tmp_path / "mf")
    assert np.array_equal(series.image.array[:, :, ::-1], volume)
    flip = np.eye(4)
    flip[2, 2], flip[2, 3] = -1, volume.shape[2] - 1  # read index k = source index n-1-k
    np.testing.assert_allclose(series.image.affine, source.ras_affine() @ flip, atol=1e-5)
