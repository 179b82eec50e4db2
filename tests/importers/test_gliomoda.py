"""GlioMODA's form through the CLI: nnU-Net models each trained on a subset of the sequences act as one
model (``--model A B``) for any subset; the member using the most of the case's sequences runs alone and its
labels equal that member's run alone (a folder or its `models import` checkpoint); a case no member can take:
one line, exit 2."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from nnunet_folder import write_trained_folder

from brats_seg.cli import main

pytestmark = pytest.mark.realdata
CASE = "BraTS2021_00002"


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("gliomoda")
    full = write_trained_folder(root / "all4", seed=0)  # T1, T1ce, T2, Flair
    two = write_trained_folder(root / "t2f_t2w", channels=("Flair", "T2"), seed=1)
    return full, two


def case_with(crops, root, suffixes):
    """The crop of CASE holding only the files of ``suffixes`` (BraTS 2021 names)."""
    folder = root / CASE
    folder.mkdir(parents=True)
    for suffix in suffixes:
        shutil.copy(crops[CASE][0] / f"{CASE}_{suffix}.nii.gz", folder)
    return folder


def predict(case, models, out):
    assert main(["predict", str(case), "--model", *map(str, models), "--out", str(out), "--no-progress"]) == 0
    seq = json.loads((out / f"{CASE}.json").read_text())["sequences"]
    return np.asarray(nib.load(out / f"{CASE}.nii.gz").dataobj), seq


@pytest.mark.parametrize("suffixes, chosen", [(("t1", "t2", "flair"), 1), (("t1", "t1ce", "t2", "flair"), 0)])
def test_the_member_with_the_case_sequences_runs(crops, members, tmp_path, suffixes, chosen):
    case = case_with(crops, tmp_path / "in", suffixes)
    both, seq = predict(case, members, tmp_path / "both")
    alone, _ = predict(case, [members[chosen]], tmp_path / "alone")
    assert [m["name"] for m in seq["members"]] == [str(members[chosen])]
    assert [m["name"] for m in seq["left_out"]] == [str(members[1 - chosen])]
    assert np.array_equal(both, alone) and (both > 0).any()
    if chosen == 1:  # the case lacks t1c: the four-sequence model cannot take it; t1n is not used
        assert seq["left_out"][0]["reason"].startswith("missing t1c") and seq["unused"] == ["t1n"]
    else:  # both could: the one using all four sequences
        assert "fewer of the case's sequences" in seq["left_out"][0]["reason"]


def test_a_case_no_member_can_take(crops, members, tmp_path, capsys):
    case = case_with(crops, tmp_path / "in", ("t1", "t1ce"))
    assert main(["predict", str(case), "--model", *map(str, members), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "missing t2w, t2f" in err[0] and "none of the 2 ensemble members" in err[0]


def test_imported_checkpoints_act_the_same(crops, members, tmp_path):
    pt = tmp_path / "t2f_t2w.pt"
    assert main(["models", "import", str(members[1]), "--out", str(pt)]) == 0
    case = case_with(crops, tmp_path / "in", ("t1", "t2", "flair"))
    both, seq = predict(case, [members[0], pt], tmp_path / "both")
    folder, _ = predict(case, [members[1]], tmp_path / "folder")
    assert [m["name"] for m in seq["members"]] == [str(pt)] and np.array_equal(both, folder)
