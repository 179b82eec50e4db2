"""README "Data": conversions between schemes go by meaning and refuse, naming the label, where a label has no
counterpart; through data_scripts/convert_layout.py on a BraTS 2024 GLI post-treatment set (a cavity, 4)."""

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np

from helpers import tiny_volumes, write_nifti

SCRIPT = Path(__file__).resolve().parents[2] / "data_scripts" / "convert_layout.py"
NAMES = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}


def _convert():
    spec = importlib.util.spec_from_file_location("convert_layout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cavity_has_no_brats2021_counterpart(tmp_path, capsys):
    for i, cavity in enumerate((False, True)):
        cid = f"BraTS-GLI-{i + 1:05d}-100"
        vols, label = tiny_volumes(seed=i)
        gli = np.choose(label, [0, 1, 2, 0, 3]).astype(np.uint8)  # brats2021 1, 2, 4 -> 1, 2, 3
        if cavity:
            gli[:4][(vols["t1"][:4] != 0) & (gli[:4] == 0)] = 4
        for name, v in vols.items():
            write_nifti(tmp_path / "src" / cid / f"{cid}-{NAMES[name]}.nii.gz", v)
        write_nifti(tmp_path / "src" / cid / f"{cid}-seg.nii.gz", gli)
    assert _convert().main([str(tmp_path / "src"), str(tmp_path / "out"), "--to", "brats2021"]) == 1
    err = capsys.readouterr().err
    assert "label 4 (resection cavity (RC)) has no counterpart" in err and "BraTS-GLI-00002-100" in err
    ok = nib.load(str(tmp_path / "out" / "BraTS-GLI-00001-100" / "BraTS-GLI-00001-100_seg.nii.gz"))
    assert set(np.unique(np.asarray(ok.dataobj)).tolist()) == {0, 1, 2, 4}  # ET 3 -> 4 by meaning
    assert not (tmp_path / "out" / "BraTS-GLI-00002-100").exists()  # nothing half-written for the refused case
