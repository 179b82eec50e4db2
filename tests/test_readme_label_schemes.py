"""The README's label-scheme table, row by row, through the public API (``evaluate_case`` scores every group the
scheme scores) and the scheme decision for a BraTS 2017-2021 id holding a 3 through `brats-seg check`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import brats_seg as bs
from brats_seg.cli import main
from helpers import tiny_volumes, write_nifti

# scheme: {group: labels in it}, as the README's table lists them (WT, TC, ET, then "also scored")
TABLE = {
    "brats2015": {"WT": {1, 2, 3, 4}, "TC": {1, 3, 4}, "ET": {4}},
    "brats2021": {"WT": {1, 2, 4}, "TC": {1, 4}, "ET": {4}},
    "brats2023": {"WT": {1, 2, 3}, "TC": {1, 3}, "ET": {3}},
    "msd": {"WT": {1, 2, 3}, "TC": {2, 3}, "ET": {3}},
    "brats2024-gli": {"WT": {1, 2, 3}, "TC": {1, 3}, "ET": {3}, "NETC": {1}, "SNFH": {2}, "RC": {4}},
    "brats2024-met": {"WT": {1, 2, 3}, "TC": {1, 3}, "ET": {3}, "RC": {4}},
    "brats2024-ped": {"WT": {1, 2, 3, 4}, "TC": {1, 2, 3}, "ET": {1}, "NETC": {2}, "CC": {3}, "ED": {4}},
    "brats2024-men-rt": {"GTV": {1}},
}


@pytest.mark.parametrize("scheme", sorted(TABLE))
def test_each_scheme_scores_the_groups_of_the_table(scheme):
    labels = sorted(set().union(*TABLE[scheme].values()))
    ref = np.zeros((8, 8, 8), np.uint8)
    for k, value in enumerate(labels):  # label v fills k + 1 voxels of its own row
        ref[2 * k, 0, : k + 1] = value
    scores = bs.evaluate_case(ref, ref, (1.0, 1.0, 1.0), scheme, scheme)
    assert set(scores) == set(TABLE[scheme])
    for group, members in TABLE[scheme].items():
        want = sum(k + 1 for k, v in enumerate(labels) if v in members)
        assert scores[group]["volume_ref_ml"] == pytest.approx(want / 1000), (scheme, group)
        assert scores[group]["dice"] == 1.0


def test_brats2021_naming_with_a_3_is_the_2015_scheme(tmp_path, capsys):
    vols, label = tiny_volumes()
    label[label == 1] = 3  # non-enhancing tumour: the BraTS 2015 set
    for name, v in vols.items():
        write_nifti(tmp_path / "d" / "Brats18_X_1" / f"Brats18_X_1_{name}.nii.gz", v)
    write_nifti(tmp_path / "d" / "Brats18_X_1" / "Brats18_X_1_seg.nii.gz", label)
    assert main(["check", str(tmp_path / "d"), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label_scheme"] == "brats2015"
