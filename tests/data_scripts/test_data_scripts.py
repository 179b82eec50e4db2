"""The data_scripts helpers, run through their main() on tiny datasets."""

import importlib.util
import json
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_seg.data.reading.layouts import discover_cases
from helpers import write_dataset

SCRIPTS = Path(__file__).resolve().parents[2] / "data_scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_brats2021_to_2023_and_nnunet(tmp_path):
    write_dataset(tmp_path / "src", "brats2021", n_cases=2)
    convert = _load("convert_layout")
    assert convert.main([str(tmp_path / "src"), str(tmp_path / "b23"), "--to", "brats2023"]) == 0
    src = {c.case_id: c for c in discover_cases(tmp_path / "src")}
    for case in discover_cases(tmp_path / "b23"):
        assert case.layout == "brats2023"
        old = np.asarray(nib.load(str(src[case.case_id].label)).dataobj)
        new = nib.load(str(case.label))
        assert new.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(np.asarray(new.dataobj), np.where(old == 4, 3, old))
        np.testing.assert_array_equal(new.affine, nib.load(str(src[case.case_id].label)).affine)
    assert convert.main([str(tmp_path / "src"), str(tmp_path / "nn"), "--to", "nnunet"]) == 0
    assert {c.layout for c in discover_cases(tmp_path / "nn")} == {"nnunet"}
    # converting again never overwrites: every case fails, exit 1
    assert convert.main([str(tmp_path / "src"), str(tmp_path / "b23"), "--to", "brats2023"]) == 1


def test_make_splits_matches_trainer(tmp_path):
    write_dataset(tmp_path / "d", "brats2021", n_cases=5)
    out = tmp_path / "splits.json"
    assert _load("make_splits").main([str(tmp_path / "d"), "--folds", "5", "--out", str(out)]) == 0
    splits = json.loads(out.read_text())["splits"]
    vals = sorted(c for s in splits for c in s["val"])
    assert len(splits) == 5 and vals == sorted(c.case_id for c in discover_cases(tmp_path / "d"))


def test_organize_refuses_path_traversal_and_extracts(tmp_path, capsys):
    write_dataset(tmp_path / "d", "brats2021", n_cases=2)
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as t:
        t.add(tmp_path / "d", arcname="BraTS_Training")
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as t:
        t.add(tmp_path / "d", arcname="../escape")
    organize = _load("organize_brats")
    assert organize.main([str(good), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert len(discover_cases(tmp_path / "out" / "good")) == 2
    assert not (tmp_path / "escape").exists()
    assert "outside" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["convert_layout", "make_splits", "organize_brats"])
def test_scripts_have_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(["--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out
