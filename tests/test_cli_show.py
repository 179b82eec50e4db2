import numpy as np

from brats_seg.cli import main
from helpers import write_nifti


def test_show_real_case_with_prediction(shared_data, tmp_path, capsys):
    case = shared_data / "brats2018" / "Brats18_TCIA13_623_1"
    out = tmp_path / "overlay.png"
    assert main(["show", str(case), "--pred", str(case / "Brats18_TCIA13_623_1_seg.nii.gz"), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_show_rejects_prediction_of_other_shape(brats2021_case, tmp_path, capsys):
    pred = write_nifti(tmp_path / "pred.nii.gz", np.zeros((5, 5, 5), np.uint8))
    case = brats2021_case / "BraTS2021_00001"
    code = main(["show", str(case), "--pred", str(pred), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pred.nii.gz" in err[0] and "shape" in err[0]
    assert not (tmp_path / "x.png").exists()
