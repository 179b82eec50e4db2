"""DICOM SEG that other tools accept (issue 24): read back with highdicom (segments and their codes,
referenced series and instances, frame of reference), pixels equal to the labels; a source that
cannot carry a SEG is refused in one line and ``segment`` exits 3 with the NIfTI labels standing."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from brats_seg.cli.segment import NO_DICOM_SEG, no_dicom_seg_status
from brats_seg.prepare.dicom_seg import DicomSegError, segment_plan, write_dicom_seg
from brats_seg.prepare.series import read_series

pytestmark = pytest.mark.realdata


def fake_labels(values: np.ndarray, codes=(1, 2, 4)) -> np.ndarray:
    """Labels ``(X, Y, Z)`` from intensity bands of the crop (each band a label of the scheme)."""
    bands = np.percentile(values, (55, 75, 90))
    labels = np.zeros(values.shape, np.uint8)
    for level, code in zip(bands, codes):
        labels[values > level] = code
    return labels


@pytest.mark.parametrize("name, scheme", [("explicit little endian", "brats2021"),
                                          ("oblique (20 and -12 degrees)", "brats2024-gli"),
                                          ("Enhanced MR multi-frame", "brats2023")])
def test_seg_read_back_with_highdicom(corpus, tmp_path, name, scheme):
    series = read_series(corpus[name].folder)
    codes = {"brats2021": (1, 2, 4), "brats2023": (1, 2, 3), "brats2024-gli": (2, 1, 4)}[scheme]
    labels = fake_labels(series.image.array, codes)
    path = write_dicom_seg(tmp_path / "seg.dcm", labels, series.files, scheme)
    seg = hd.seg.segread(path)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files]
    plan = segment_plan(scheme)
    assert seg.get_segment_numbers() == list(range(1, len(plan) + 1))
    names = [seg.get_segment_description(n).SegmentLabel for n in seg.get_segment_numbers()]
    assert names[-2:] == ["WT", "TC"]  # the scored groups that join several labels
    for n in seg.get_segment_numbers():
        d = seg.get_segment_description(n)
        assert d.segmented_property_category.value == "49755003"  # morphologically abnormal structure
        assert d.segmented_property_type.scheme_designator == "SCT"
    if scheme == "brats2024-gli":
        assert "resection cavity (RC)" in names
    kinds = {seg.get_segment_description(n).SegmentLabel: seg.get_segment_description(n).segmented_property_type.meaning
             for n in seg.get_segment_numbers()}
    assert any(k == "Edema" for k in kinds.values()) and kinds["WT"] == "Neoplasm"
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = {sop for _, ser, sop in seg.get_source_image_uids() if ser == sources[0].SeriesInstanceUID}
    assert referenced == {s.SOPInstanceUID for s in sources}
    numbers = seg.get_segment_numbers()
    if len(sources) == 1:  # Enhanced: frame k of the source = slice k
        pixels = seg.get_pixels_by_source_frame(sources[0].SOPInstanceUID, list(range(1, labels.shape[2] + 1)),
                                                segment_numbers=numbers)
    else:
        pixels = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=numbers)
    for k, (_, values, _) in enumerate(plan):  # pixels (slices, rows, columns, segments)
        assert np.array_equal(np.transpose(pixels[..., k], (2, 1, 0)) > 0, np.isin(labels, sorted(values)))
    assert pixels.any()


def test_no_frame_of_reference_no_seg_in_one_line(corpus, tmp_path):
    series = read_series(corpus["no Frame of Reference UID"].folder)
    with pytest.raises(DicomSegError) as e:
        write_dicom_seg(tmp_path / "seg.dcm", fake_labels(series.image.array), series.files, "brats2021")
    assert "no Frame of Reference UID" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "seg.dcm").exists()


def test_segment_exit_status_3_when_a_seg_is_missing(capsys):
    class Done:
        no_dicom_seg = {"t1c": "x.dcm: the source series has no Frame of Reference UID"}

    assert no_dicom_seg_status({"case": Done()}, 0) == NO_DICOM_SEG == 3
    assert "no DICOM SEG: x.dcm: the source series has no Frame of Reference UID" in capsys.readouterr().err
    assert no_dicom_seg_status({"case": Done()}, 1) == 1  # failed cases decide first
    Done.no_dicom_seg = {}
    assert no_dicom_seg_status({"case": Done()}, 0) == 0


def test_segment_cli_without_frame_of_reference_exits_3(shared_data, tmp_path, capsys):
    """The issue's case: a T1c as SimpleITK's series writer leaves it (no Frame of Reference UID).
    ``segment`` writes the NIfTI labels, says in one line why there is no SEG, exits 3, no traceback."""
    import json

    import nibabel as nib
    from conftest import SIM_CASE, brats18_files
    from test_clinical import t1c_only_checkpoint

    from brats_seg.cli import main
    from brats_seg.prepare.simulate import write_dicom_series

    img = nib.load(brats18_files(shared_data, SIM_CASE)["t1c"])
    affine = img.affine.copy()
    affine[:3, 2] *= 3  # every third slice: 3 mm, 52 files
    folder = write_dicom_series(tmp_path / "t1c", np.asarray(img.dataobj)[:, :, ::3], affine, patient_id="P1",
                                description="AX T1 POST GD")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        del ds.FrameOfReferenceUID
        ds.save_as(f)
    out = tmp_path / "seg"
    code = main(["segment", "--t1c", str(folder), "--model", str(t1c_only_checkpoint(tmp_path / "m.pt")),
                 "--case-id", "c", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3, err
    lines = [line for line in err.splitlines() if "no DICOM SEG" in line]
    assert len(lines) == 1 and "no Frame of Reference UID" in lines[0] and "Traceback" not in err
    seg = out / "c" / "segmentation"
    assert (seg / "labels_in_t1c_space.nii.gz").exists() and not list(seg.glob("*.dcm"))
    assert "t1c" in json.loads((seg / "segment.json").read_text())["no_dicom_seg"]
