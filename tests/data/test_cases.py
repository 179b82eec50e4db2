"""Case discovery in every layout (tiny cases written to tmp_path) and on the real shared cases."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.conventions import MODALITIES
from brats_seg.data.reading.layouts import LAYOUTS, discover_cases
from brats_seg.data.reading.layouts.nnunet import scheme_from_dataset_labels
from brats_seg.data.reading.volumes import load_case
from brats_seg.errors import BratsSegError, CaseError
from helpers import DATASET_LAYOUTS, dataset_case_ids, tiny_volumes, write_dataset, write_nifti

HINTS = {"brats2021": "brats2021", "brats2023": "brats2023", "msd": "msd", "nnunet": "msd", "csv": None}


def test_registry_holds_every_layout():
    assert set(DATASET_LAYOUTS) <= set(LAYOUTS)


@pytest.mark.parametrize("layout", DATASET_LAYOUTS)
@pytest.mark.parametrize("labeled", [True, False])
def test_every_layout_is_detected(tmp_path, layout, labeled):
    root = write_dataset(tmp_path / "ds", layout, n_cases=2, labeled=labeled)
    for forced in (None, layout):
        cases = discover_cases(root, layout=forced)
        assert [c.case_id for c in cases] == dataset_case_ids(layout, 2)
        for c in cases:
            assert c.layout == layout
            assert c.label_scheme == HINTS[layout]
            assert c.modalities == MODALITIES
            assert (c.label is not None) == labeled
            assert c.problems == ()


@pytest.mark.parametrize("layout", DATASET_LAYOUTS)
def test_channels_are_mapped_by_name(tmp_path, layout):
    """Whatever the layout stores (4-D MSD order, nnU-Net channel numbers), t1c is t1c."""
    root = write_dataset(tmp_path / "ds", layout)
    vol = load_case(discover_cases(root)[0])
    vols, label = tiny_volumes((16, 16, 16), seed=0)
    expected = {"t1n": vols["t1"], "t1c": vols["t1ce"], "t2w": vols["t2"], "t2f": vols["flair"]}
    assert vol.channels == MODALITIES
    for i, m in enumerate(MODALITIES):
        np.testing.assert_array_equal(vol.image[i], expected[m])
    assert vol.label.shape == (16, 16, 16) and set(np.unique(vol.label)) - {0} != set()


def test_msd_test_images_and_dot_files(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd", n_cases=1)
    (root / "imagesTr" / "._BRATS_001.nii.gz").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (root / "labelsTr" / "._BRATS_001.nii.gz").write_bytes(b"junk")
    vols, _ = tiny_volumes((16, 16, 16))
    write_nifti(root / "imagesTs" / "BRATS_485.nii.gz", np.stack(list(vols.values()), axis=-1))
    cases = discover_cases(root)
    assert [c.case_id for c in cases] == ["BRATS_001", "BRATS_485"]
    assert cases[0].label is not None and cases[1].label is None
    assert dict(cases[0].channel_index) == {"t2f": 0, "t1n": 1, "t1c": 2, "t2w": 3}
    assert all(c.problems == () for c in cases)


def test_single_case_folder_and_nested_archive_folder(tmp_path):
    root = write_dataset(tmp_path / "unpacked" / "BraTS2021_Training_Data", "brats2021", n_cases=2)
    one = discover_cases(root / "BraTS2021_00001")
    assert [c.case_id for c in one] == ["BraTS2021_00001"]
    assert [c.case_id for c in discover_cases(tmp_path / "unpacked")] == ["BraTS2021_00001", "BraTS2021_00002"]


def test_other_brats_names(tmp_path):
    vols, label = tiny_volumes((16, 16, 16))
    for case in ("Brats18_2013_3_1", "BraTS20_Training_001"):
        for name, v in {**vols, "seg": label}.items():
            write_nifti(tmp_path / case / f"{case}_{name}.nii", v)
    for prefix in ("MEN", "MET", "PED", "SSA"):
        case = f"BraTS-{prefix}-00001-000"
        for name in ("t1n", "t1c", "t2w", "t2f"):
            write_nifti(tmp_path / "new" / case / f"{case}-{name}.nii.gz", vols["t1"])
    old = discover_cases(tmp_path, layout="brats2021")
    assert [c.case_id for c in old] == ["BraTS20_Training_001", "Brats18_2013_3_1"]
    assert all(c.modalities == MODALITIES and c.label is not None for c in old)
    new = discover_cases(tmp_path / "new")
    assert [c.case_id[6:9] for c in new] == ["MEN", "MET", "PED", "SSA"]
    assert all(c.layout == "brats2023" and c.label is None for c in new)


def test_duplicate_and_unknown_files_become_problems(tmp_path):
    root = write_dataset(tmp_path / "ds", "brats2021")
    case = root / "BraTS2021_00001"
    shutil.copy(case / "BraTS2021_00001_t1ce.nii.gz", case / "BraTS2021_00001_t1gd.nii.gz")
    shutil.copy(case / "BraTS2021_00001_t1.nii.gz", case / "BraTS2021_00001_t1_corrected.nii.gz")
    shutil.copy(case / "BraTS2021_00001_seg.nii.gz", case / "W39_1998.09.19_Segm.nii")  # as in BraTS 2020 case 355
    shutil.copy(case / "BraTS2021_00001_t1.nii.gz", case / "BraTS2021_00001_brain.nii.gz")  # not a modality: ignored
    (c,) = discover_cases(root)
    assert c.images["t1c"].name == "BraTS2021_00001_t1ce.nii.gz"
    assert len(c.problems) == 3, c.problems
    assert "duplicate t1c files: BraTS2021_00001_t1ce.nii.gz and BraTS2021_00001_t1gd.nii.gz" in c.problems
    assert any("BraTS2021_00001_t1_corrected.nii.gz" in p and "unrecognised" in p for p in c.problems)
    assert any("W39_1998.09.19_Segm.nii" in p for p in c.problems)


def test_nnunet_channel_problems_and_v1_json(tmp_path):
    root = write_dataset(tmp_path / "nn", "nnunet")
    meta = json.loads((root / "dataset.json").read_text())
    meta.pop("channel_names")
    meta["modality"] = {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    meta["labels"] = {"0": "background", "1": "NCR/NET", "2": "edema", "4": "enhancing tumor"}
    (root / "dataset.json").write_text(json.dumps(meta))
    shutil.copy(root / "imagesTr" / "BraTS2021_00001_0000.nii.gz", root / "imagesTr" / "BraTS2021_00001_0004.nii.gz")
    (c,) = discover_cases(root)
    assert c.label_scheme == "brats2021"
    assert c.problems == ("file BraTS2021_00001_0004.nii.gz is channel 4, but dataset.json names channels 0, 1, 2, 3",)
    meta["modality"]["3"] = "DWI"
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(CaseError, match=r"dataset.json: channel '3' = 'DWI' is not a known modality"):
        discover_cases(root)


@pytest.mark.parametrize("labels, scheme", [
    ({"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}, "msd"),
    ({"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}, "msd"),
    ({"background": 0, "NETC": 1, "SNFH": 2, "ET": 3}, "brats2023"),
    ({"background": 0, "NCR": 1, "ED": 2, "ET": 4}, "brats2021"),
    ({"background": 0, "necrotic and non-enhanced": 1, "peritumoral edema": 2, "enhancing": 4}, "brats2021"),
    ({"background": 0, "necrosis": 1, "edema": 2, "enhancing tumor": 3}, "brats2023"),
    ({"background": 0, "tumor": 1}, None),
])
def test_scheme_from_dataset_labels(labels, scheme):
    assert scheme_from_dataset_labels(labels) == scheme


def test_csv_manifest_aliases_and_problems(tmp_path):
    csv_path = write_dataset(tmp_path / "ds", "csv", n_cases=2)
    text = csv_path.read_text().splitlines()
    header = text[0].replace("t1n", "T1").replace("t2f", "FLAIR").replace("t1c", "t1ce") + ",label_scheme"
    rows = [text[1] + ",brats2021", text[2] + ",bogus", text[1] + ","]
    (tmp_path / "ds" / "m.csv").write_text("\n".join([header, *rows]) + "\n")
    cases = discover_cases(tmp_path / "ds" / "m.csv")
    assert [c.case_id for c in cases] == ["case001", "case002"]
    assert cases[0].label_scheme == "brats2021" and cases[1].label_scheme is None
    assert cases[0].images["t2f"] == tmp_path / "ds" / "files" / "case001_t2f.nii.gz"
    assert cases[0].problems == ("listed twice in m.csv (rows 2 and 4); the second row is ignored",)
    assert "unknown label scheme 'bogus'" in cases[1].problems[0]
    (tmp_path / "bad.csv").write_text("name,t1,t1n\nx,a,b\n")
    with pytest.raises(CaseError, match="no case id column"):
        discover_cases(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("case_id,t1,t1n\nx,a,b\n")
    with pytest.raises(CaseError, match="two columns mean t1n"):
        discover_cases(tmp_path / "bad.csv")


def test_bad_roots_give_one_clear_error(tmp_path):
    with pytest.raises(CaseError, match=r"nowhere: no such file or folder"):
        discover_cases(tmp_path / "nowhere")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(CaseError) as e:
        discover_cases(tmp_path / "empty")
    assert str(e.value) == (f"{tmp_path / 'empty'}: no recognisable cases"
                            " (tried layouts brats2021, brats2023, msd, nnunet, csv)")
    with pytest.raises(CaseError, match="is a file"):
        discover_cases(tmp_path / "empty" / "readme.txt")
    root = write_dataset(tmp_path / "ds", "brats2021")
    with pytest.raises(CaseError, match="no cases in the brats2023 layout"):
        discover_cases(root, layout="brats2023")
    nn = write_dataset(tmp_path / "nn", "nnunet")
    (nn / "dataset.json").unlink()
    with pytest.raises(CaseError, match="needs dataset.json"):
        discover_cases(nn)
    with pytest.raises(BratsSegError, match="unknown layout 'brats2019'; valid: brats2021"):
        discover_cases(root, layout="brats2019")


def test_real_cases_are_discovered(shared_data):
    old = discover_cases(shared_data / "brats2018")
    assert [c.case_id for c in old] == sorted(c.case_id for c in old) and len(old) == 4
    assert all(c.layout == "brats2021" and c.modalities == MODALITIES and c.label and not c.problems for c in old)
    (gli,) = discover_cases(shared_data / "brats-gli")
    assert gli.case_id == "BraTS-GLI-00000-000" and gli.layout == "brats2023" and gli.label_scheme == "brats2023"
    assert gli.images["t1c"].name == "BraTS-GLI-00000-000-t1c.nii.gz"


def test_flat_folder_of_several_cases(tmp_path):
    """All cases' files in one folder (as some downloads unpack): grouped by the name before the suffix."""
    root = write_dataset(tmp_path / "ds", "brats2023", n_cases=3)
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in root.glob("*/*.nii.gz"):
        f.rename(flat / f.name)
    cases = discover_cases(flat)
    assert [c.case_id for c in cases] == dataset_case_ids("brats2023", 3)
    assert all(c.modalities == MODALITIES and c.label is not None and not c.problems for c in cases)
    assert all(p.parent == flat and p.name.startswith(c.case_id) for c in cases for p in c.images.values())


def _unknown_csv_column(root):
    csv_path = root / "cases.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0] + ",DWI", *(line + ",files/x.nii.gz" for line in lines[1:])]) + "\n")
    return csv_path, "cases.csv: unknown column 'DWI'; accepted: a case id (case_id"


def _unknown_nnunet_channel(root):
    meta = json.loads((root / "dataset.json").read_text())
    meta["channel_names"]["3"] = "DWI"
    (root / "dataset.json").write_text(json.dumps(meta))
    return root, "dataset.json: channel '3' = 'DWI' is not a known modality (accepted: "


def _unknown_msd_modality(root):
    meta = json.loads((root / "dataset.json").read_text())
    meta["modality"]["0"] = "ADC"
    (root / "dataset.json").write_text(json.dumps(meta))
    return root, "dataset.json: channel '0' = 'ADC' is not a known modality (accepted: "


def _msd_without_modality(root):
    meta = json.loads((root / "dataset.json").read_text())
    del meta["modality"]
    (root / "dataset.json").write_text(json.dumps(meta))
    return root, "dataset.json: no 'modality' entry naming the channels of the 4-D images"


@pytest.mark.parametrize("command", ["check", "preprocess"])
@pytest.mark.parametrize("layout, break_it", [("csv", _unknown_csv_column), ("nnunet", _unknown_nnunet_channel),
                                              ("msd", _unknown_msd_modality), ("msd", _msd_without_modality)])
def test_unknown_channel_names_are_one_line_errors(tmp_path, capsys, command, layout, break_it):
    """A channel a layout names but we do not know is bad input (exit 2), never a channel left out or guessed."""
    root = write_dataset(tmp_path / "ds", layout, n_cases=1)
    target, message = break_it(root.parent if layout == "csv" else root)
    args = [command, str(target)] + ([str(tmp_path / "cache"), "--quiet"] if command == "preprocess" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    if "accepted" in message:
        assert all(name in err[0] for name in ("t1ce", "flair", "t2w"))
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("command", ["check", "preprocess"])
def test_mixed_layouts_are_refused_not_dropped(shared_data, tmp_path, capsys, command):
    """Case folders of two layouts in one dataset folder: one line naming both, exit 2 (no case left out)."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for case in ("brats2018/Brats18_2013_3_1", "brats-gli/BraTS-GLI-00000-000"):
        (mixed / case.split("/")[1]).symlink_to(shared_data / case)
    with pytest.raises(CaseError, match=r"1 in the brats2021 layout, 1 in the brats2023 layout"):
        discover_cases(mixed)
    args = [command, str(mixed)] + ([str(tmp_path / "cache")] if command == "preprocess" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "case folders of several layouts" in err[0] and str(mixed) in err[0], err
    assert not (tmp_path / "cache").exists()
