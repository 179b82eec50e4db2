"""``brats-seg segment`` on a clinical-style case (TCGA-FG-6692: four scanner series, skull on) with an
nnU-Net v2 folder as the model: prepared, predicted, labels written on the T1c's own grid."""

from __future__ import annotations

import numpy as np
import pytest
from nnunet_folder import PLAIN, write_trained_folder

from brats_seg.cli import main
from brats_seg.data.reading.image_io import read_image

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_segment_clinical_case_with_nnunet_folder(shared_data, tmp_path):
    folder = write_trained_folder(tmp_path / "m", network=PLAIN, regions=True, patch=(64, 64, 64), features=(4, 8, 16))
    case = shared_data / "clinical" / "TCGA-FG-6692"
    out = tmp_path / "seg"
    assert main(["segment", str(case), "--model", str(folder), "--out", str(out), "--no-progress"]) == 0
    labels = read_image(out / "TCGA-FG-6692" / "segmentation" / "labels_in_t1c_space.nii.gz", dtype=None)
    t1c = read_image(case / "t1c.nii.gz")
    assert labels.shape == t1c.shape and labels.array.dtype == np.uint8
    np.testing.assert_allclose(labels.affine, t1c.affine, atol=1e-4)
    assert labels.array.any()
