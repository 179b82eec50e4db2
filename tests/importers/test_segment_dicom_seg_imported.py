"""``brats-seg segment`` on a DICOM T1c series (a real BraTS 2018 T1c written as scanner DICOM) with an nnU-Net
v2 folder that reads only the T1c (GlioMODA-style single-sequence model): labels on the T1c's grid and a
DICOM SEG that highdicom reads back, its pixels equal to those labels."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from nnunet_folder import write_trained_folder

from brats_seg.cli import main
from brats_seg.data.reading.image_io import read_image
from brats_seg.prepare.dicom_seg import segment_plan
from brats_seg.prepare.simulate import write_dicom_series

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
CASE = "Brats18_TCIA01_201_1"


def test_segment_dicom_t1c_writes_dicom_seg_with_imported_model(shared_data, tmp_path, capsys):
    img = nib.load(shared_data / "brats2018" / CASE / f"{CASE}_t1ce.nii.gz")
    affine = img.affine.copy()
    affine[:3, 2] *= 3  # every third slice: 3 mm, 52 files
    series = write_dicom_series(tmp_path / "t1c", np.asarray(img.dataobj)[:, :, ::3], affine, patient_id="P1",
                                description="AX T1 POST GD")
    folder = write_trained_folder(tmp_path / "m", channels=("T1ce",), patch=(32, 32, 32), spacing=(2.0, 2.0, 2.0))
    out = tmp_path / "seg"
    code = main(["segment", "--t1c", str(series), "--model", str(folder), "--case-id", "c", "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    labels = read_image(out / "c" / "segmentation" / "labels_in_t1c_space.nii.gz", dtype=None).array
    seg = hd.seg.segread(out / "c" / "segmentation" / "labels_in_t1c_space.dcm")
    sources = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in series.iterdir()),
                     key=lambda d: float(d.ImagePositionPatient[2]))
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    numbers = seg.get_segment_numbers()
    pixels = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=numbers)
    plan = segment_plan("msd")  # the model's own scheme (scanner input records none)
    assert len(plan) == len(numbers)
    for k, (_, values, _) in enumerate(plan):  # pixels (slices, rows, columns, segments)
        assert np.array_equal(np.transpose(pixels[..., k], (2, 1, 0)) > 0, np.isin(labels, sorted(values)))
    assert labels.any()
