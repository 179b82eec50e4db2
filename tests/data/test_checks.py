"""``check_case``/``check_dataset``: every problem of item 5 gives its one clear error."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest

from brats_seg.data.reading.checks import check_case, check_dataset, read_volume
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.errors import CaseError
from helpers import DATASET_LAYOUTS, DEFECTS, tiny_affine, write_dataset, write_nifti

SCHEMES = {"brats2021": "brats2021", "brats2023": "brats2023", "msd": "msd", "nnunet": "msd", "csv": "brats2021"}
CASE = "BraTS2021_00001"


@pytest.mark.parametrize("layout", DATASET_LAYOUTS)
def test_valid_cases_in_every_layout(tmp_path, layout):
    # a CSV manifest without a label_scheme column does not say which scheme {0, 1, 2, 4} is (4: ET, RC or ED)
    scheme = "brats2021" if layout == "csv" else None
    results = check_dataset(write_dataset(tmp_path / "l", layout, n_cases=2), scheme=scheme, progress=False)
    assert [r.ok for r in results] == [True, True], [r.errors for r in results]
    for r in results:
        assert r.layout == layout and r.label_scheme == SCHEMES[layout]
        assert r.modalities == ["t1n", "t1c", "t2w", "t2f"] and r.shape == [16, 16, 16] and r.errors == []
    unlabeled = check_dataset(write_dataset(tmp_path / "u", layout, labeled=False), progress=False)
    assert unlabeled[0].ok and unlabeled[0].label_values is None


def _one_case(tmp_path):
    root = write_dataset(tmp_path / "ds", "brats2021")
    return root, root / CASE


def _file(folder, name):
    return folder / f"{CASE}_{name}.nii.gz"


def _errors(root, **kw):
    (result,) = check_dataset(root, progress=False, **kw)
    assert result.ok is (not result.errors)
    return result.errors


def _rewrite(path, fn, affine=None):
    img = nib.load(str(path))
    write_nifti(path, fn(np.asanyarray(img.dataobj)), img.affine if affine is None else affine)


BAD_INPUTS = {
    "missing modality": (lambda d: _file(d, "t1ce").unlink(),
                         "missing modality t1c (found t1n, t2w, t2f)"),
    "duplicate modality": (lambda d: shutil.copy(_file(d, "t1ce"), _file(d, "t1gd")),
                           f"duplicate t1c files: {CASE}_t1ce.nii.gz and {CASE}_t1gd.nii.gz"),
    "shape mismatch": (lambda d: _rewrite(_file(d, "t1ce"), lambda a: a[:, :, :15]),
                       f"t1c ({CASE}_t1ce.nii.gz) has shape 16x16x15, t1n ({CASE}_t1.nii.gz) has 16x16x16"),
    "affine mismatch": (lambda d: _rewrite(_file(d, "t2"), lambda a: a, tiny_affine((1.0, 1.0, 1.2))),
                        f"t2w ({CASE}_t2.nii.gz) affine differs from t1n ({CASE}_t1.nii.gz) by up to 0.2 mm"),
    "label shape mismatch": (lambda d: _rewrite(_file(d, "seg"), lambda a: a[1:]),
                             f"label ({CASE}_seg.nii.gz) has shape 15x16x16, t1n ({CASE}_t1.nii.gz) has 16x16x16"),
    "label affine mismatch": (lambda d: _rewrite(_file(d, "seg"), lambda a: a, np.eye(4)),
                              f"label ({CASE}_seg.nii.gz) affine differs from t1n ({CASE}_t1.nii.gz) by up to 12 mm"),
    "NaN": (lambda d: _rewrite(_file(d, "t2"), lambda a: np.where(a > 0, a, np.nan).astype(np.float32)),
            None),  # count checked below
    "Inf": (lambda d: _rewrite(_file(d, "flair"), lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7,
                                                                     np.inf, a).astype(np.float32)),
            f"t2f ({CASE}_flair.nii.gz) has 1 NaN/Inf voxels"),
    "all zero": (lambda d: _rewrite(_file(d, "flair"), np.zeros_like), f"t2f ({CASE}_flair.nii.gz) is all zero"),
    "4-D": (lambda d: _rewrite(_file(d, "t1"), lambda a: np.stack([a, a], -1)),
            f"t1n file {CASE}_t1.nii.gz is 4-D with shape 16x16x16x2; expected a 3-D volume"),
    "label outside scheme": (lambda d: _rewrite(_file(d, "seg"), lambda a: np.where(a == 1, 5, a).astype(np.uint8)),
                             f"{CASE}_seg.nii.gz: label values [0, 2, 4, 5] do not fit scheme 'brats2021'"
                             " (valid values [0, 1, 2, 4])"),
    "non-integer label": (lambda d: _rewrite(_file(d, "seg"), lambda a: (a * 0.5).astype(np.float32)),
                          f"{CASE}_seg.nii.gz: label has non-integer values (e.g. 0.5); a label map holds"
                          " integer classes"),
}


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
def test_each_bad_input_gives_one_clear_error(tmp_path, problem):
    root, folder = _one_case(tmp_path)
    mutate, expected = BAD_INPUTS[problem]
    mutate(folder)
    errors = _errors(root)
    assert len(errors) == 1, errors
    if expected is None:
        n = int(np.isnan(nib.load(str(_file(folder, "t2"))).get_fdata()).sum())
        expected = f"t2w ({CASE}_t2.nii.gz) has {n} NaN/Inf voxels"
        assert n > 0
    assert errors[0] == expected


@pytest.mark.parametrize("cut", ["half", "trailer"])
def test_truncated_nii_gz_is_reported(tmp_path, cut):
    """Half a file, or only the gzip trailer (CRC, size) missing: nibabel alone misses the latter."""
    root, folder = _one_case(tmp_path)
    path = _file(folder, "t1ce")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-4])
    if cut == "trailer":
        assert nib.load(str(path)).get_fdata().shape == (16, 16, 16)  # nibabel reads it without complaint
    (error,) = _errors(root)
    assert error.startswith(f"{CASE}_t1ce.nii.gz: corrupt or truncated file (")
    with pytest.raises(CaseError, match="corrupt or truncated"):
        read_volume(path)


def test_corrupt_and_unreadable_files(tmp_path):
    root, folder = _one_case(tmp_path)
    raw = bytearray(gzip.decompress(_file(folder, "t2").read_bytes()))
    raw[400] ^= 0xFF  # one flipped data byte: decompresses, but the CRC no longer matches
    blob = bytearray(gzip.compress(bytes(raw)))
    blob[-8:-4] = gzip.compress(gzip.decompress(_file(folder, "t2").read_bytes()))[-8:-4]
    _file(folder, "t2").write_bytes(bytes(blob))
    _file(folder, "flair").write_bytes(b"this is not a NIfTI file")
    errors = _errors(root)
    assert len(errors) == 2
    assert errors[0].startswith(f"{CASE}_t2.nii.gz: corrupt or truncated file (CRC check failed")
    assert errors[1].startswith(f"{CASE}_flair.nii.gz: corrupt or truncated file (")
    (folder / f"{CASE}_flair.nii.gz").rename(folder / f"{CASE}_flair.nii")
    assert "unreadable" in _errors(root)[1]


def _csv_case(tmp_path, values):
    path = write_dataset(tmp_path / "csv", "csv", n_cases=2)
    for i, vals in enumerate(values):
        label = tmp_path / "csv" / "files" / f"case{i + 1:03d}_seg.nii.gz"
        _rewrite(label, lambda a, vals=vals: np.where(a > 0, vals[-1], 0).astype(np.uint8) if vals else a * 0)
        if len(vals) > 1:
            _rewrite(label, lambda a, vals=vals: np.where(np.arange(a.size).reshape(a.shape) == 0, vals[0], a))
    return path


def test_ambiguous_scheme_is_an_error_unless_given_or_decided_by_the_dataset(tmp_path):
    path = _csv_case(tmp_path, [(1, 2), (2,)])  # values {0,1,2} and {0,2}: every scheme fits
    results = check_dataset(path, progress=False)
    for r in results:
        assert not r.ok and r.label_scheme is None
        (error,) = r.errors
        assert "ambiguous between schemes" in error and "--label-scheme" in error
    forced = check_dataset(path, scheme="brats2023", progress=False)
    assert [(r.ok, r.label_scheme) for r in forced] == [(True, "brats2023")] * 2
    path = _csv_case(tmp_path / "b", [(1, 2), (4,)])  # 4 alone is ET (brats2021), RC or ED (2024+): still ambiguous
    assert [(r.ok, r.label_scheme) for r in check_dataset(path, progress=False)] == [(False, None)] * 2


def test_forced_scheme_reports_values_outside_it(tmp_path):
    root, _ = _one_case(tmp_path)
    (error,) = _errors(root, scheme="msd")
    assert error == f"{CASE}_seg.nii.gz: label values [4] are outside scheme msd (valid [0, 1, 2, 3])"


def test_msd_image_must_be_4d(tmp_path):
    root = write_dataset(tmp_path / "msd", "msd")
    _rewrite(root / "imagesTr" / "BRATS_001.nii.gz", lambda a: a[..., 0])
    (error,) = _errors(root)
    assert error == ("BRATS_001.nii.gz has shape 16x16x16; expected 4-D with 4 volumes (t2f, t1n, t1c, t2w)"
                     " along the 4th axis")


def test_problems_from_discovery_are_errors(tmp_path):
    root, folder = _one_case(tmp_path)
    shutil.copy(_file(folder, "t1"), folder / f"{CASE}_t1_old.nii.gz")
    (case,) = discover_cases(root)
    result = check_case(case)
    assert not result.ok and result.errors == list(case.problems) and "unrecognised file" in result.errors[0]


def test_no_cases_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaseError, match="no recognisable cases"):
        check_dataset(tmp_path / "empty", progress=False)


def test_real_cases_are_valid(shared_data):
    old = check_dataset(shared_data / "brats2018", progress=False)
    assert [(r.ok, r.label_scheme, r.shape) for r in old] == [(True, "brats2021", [240, 240, 155])] * 4
    assert all(r.label_values == [0, 1, 2, 4] for r in old)
    (gli,) = check_dataset(shared_data / "brats-gli", progress=False)
    assert (gli.ok, gli.label_scheme, gli.shape, gli.label_values) == (True, "brats2023", [182, 218, 182], [0, 1, 2, 3])


def test_itk_formats_are_checked(tmp_path):
    """A BraTS 2023-named case stored as .nrrd/.mha: valid, then one truncated file is reported."""
    import SimpleITK as sitk

    from helpers import tiny_volumes

    vols, label = tiny_volumes((16, 16, 16))
    case = tmp_path / "ds" / "BraTS-MEN-00001-000"
    case.mkdir(parents=True)
    names = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
    for m, old in names.items():
        sitk.WriteImage(sitk.GetImageFromArray(vols[old]), str(case / f"{case.name}-{m}.nrrd"), True)
    sitk.WriteImage(sitk.GetImageFromArray(label // 4 * 3 + (label < 4) * label), str(case / f"{case.name}-seg.mha"))
    (result,) = check_dataset(tmp_path / "ds", progress=False)
    assert (result.ok, result.label_scheme, result.shape) == (True, "brats2023", [16, 16, 16]), result.errors
    seg = case / f"{case.name}-seg.mha"
    seg.write_bytes(seg.read_bytes()[:-2000])
    (error,) = _errors(tmp_path / "ds")
    assert error.startswith(f"{seg.name}: unreadable")


def test_csv_file_that_does_not_exist(tmp_path):
    path = write_dataset(tmp_path / "csv", "csv")
    (tmp_path / "csv" / "files" / "case001_t2w.nii.gz").unlink()
    (result,) = check_dataset(path, scheme="brats2021", progress=False)
    assert result.errors == ["case001_t2w.nii.gz: file not found"]


@pytest.mark.parametrize("defect", list(DEFECTS))
@pytest.mark.parametrize("layout", ["brats2023", "nnunet"])
def test_write_dataset_defects_break_only_the_last_case(tmp_path, layout, defect):
    root = write_dataset(tmp_path / "ds", layout, n_cases=2, defect=defect)
    first, last = check_dataset(root, progress=False)
    assert first.ok, first.errors
    assert len(last.errors) == 1, last.errors
