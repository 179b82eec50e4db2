"""`brats-seg evaluate` through the real entry point: real cases against themselves, exit codes, --json."""

from __future__ import annotations

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
