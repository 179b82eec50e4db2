"""Agreement of our legacy Dice and HD95 with the official BraTS package (brats-evaluation 0.0.10).

Where the definitions coincide (both masks non-empty and overlapping, 1 mm voxels,
pooled HD95) Dice agrees to 1e-6 and HD95 to 0.01. The places where they differ
on purpose are tested as such (documented in brats_seg/evaluation/metrics.py).
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from brats_official import official_scores

from brats_seg.conventions import REGIONS
from brats_seg.evaluation.metrics import HD95_EMPTY, evaluate_case


def _labels(shape=(24, 22, 20)):
    return np.zeros(shape, np.uint8)


@pytest.mark.slow
@pytest.mark.realdata
def test_real_cases_agree_with_official(perturbed_real):
    pred_dir, cases = perturbed_real
    for case_id, (ref_path, scheme, official) in cases.items():
        ref = np.rint(np.asarray(nib.load(str(ref_path)).dataobj)).astype(np.uint8)
        pred = np.asarray(nib.load(str(pred_dir / f"{case_id}.nii.gz")).dataobj)
        ours = evaluate_case(pred, ref, (1.0, 1.0, 1.0), scheme, hd95_mode="pooled")
        for region in REGIONS:
            dsc, hd = official[region]
            assert 0.3 < dsc < 1.0, (case_id, region, dsc)  # a real disagreement, not a trivial case
            assert ours[region]["dice"] == pytest.approx(dsc, abs=1e-6), (case_id, region)
            assert ours[region]["hd95"] == pytest.approx(hd, abs=0.01), (case_id, region)


def _synthetic_cases():
    """Edge cases where the definitions coincide: tiny, thin, border-touching, multi-component masks."""
    out = {}
    a, b = _labels(), _labels()
    a[5, 5, 5] = 3
    b[5, 5, 5] = 3
    b[5, 6, 5] = 3
    out["single voxels"] = (b, a)
    a, b = _labels(), _labels()
    a[0:6, 0:5, 0:20] = 2  # touching three faces of the array
    b[0:7, 0:4, 0:19] = 2
    a[2:4, 1:3, 3:9] = 3
    b[2:4, 1:3, 4:12] = 1
    b[2:3, 1:3, 4:7] = 3
    out["border-touching"] = (b, a)
    a, b = _labels(), _labels()
    a[3:20, 10, 4:16] = 1  # one voxel thin sheet
    b[3:20, 10:12, 4:16] = 1
    a[2:5, 2:5, 2:5] = 3
    b[3:5, 2:5, 2:5] = 3
    b[18:22, 17:21, 15:19] = 3  # a far false positive component
    out["thin sheet and far component"] = (b, a)
    rng = np.random.default_rng(0)
    a = (rng.random((24, 22, 20)) > 0.8).astype(np.uint8) * 2
    b = np.where(rng.random((24, 22, 20)) > 0.3, a, 0).astype(np.uint8)
    a[10:14, 10:14, 10:14] = 3
    b[11:15, 10:14, 10:14] = 3
    out["speckle"] = (b, a)
    return out


@pytest.mark.parametrize("name", list(_synthetic_cases()))
def test_synthetic_edge_cases_agree_with_official(official_evaluator, name):
    pred, ref = _synthetic_cases()[name]
    official = official_scores(official_evaluator, pred, ref, "brats2023")
    ours = evaluate_case(pred, ref, None, "brats2023")
    for region in REGIONS:
        dsc, hd = official[region]
        assert ours[region]["dice"] == pytest.approx(dsc, abs=1e-6), (name, region)
        assert ours[region]["hd95"] == pytest.approx(hd, abs=0.01), (name, region)


def test_documented_differences_from_official(official_evaluator):
    """Empty masks, non-overlapping masks: the official package gives NaN / inf, we give the legacy values."""
    ref = _labels()
    ref[4:10, 4:10, 4:10] = 2  # WT only: TC and ET empty in both
    ref[15:18, 15:18, 15:18] = 1  # TC present in the reference ...
    pred = _labels()
    pred[4:10, 4:10, 4:10] = 2  # ... but not in the prediction
    pred[1:3, 15:18, 1:3] = 3  # ET only in the prediction, far from anything
    official = official_scores(official_evaluator, pred, ref, "brats2023")
    ours = evaluate_case(pred, ref, None, "brats2023")
    # WT overlaps: identical
    assert ours["WT"]["dice"] == pytest.approx(official["WT"][0], abs=1e-6)
    assert ours["WT"]["hd95"] == pytest.approx(official["WT"][1], abs=0.01)
    # TC: prediction's TC is the far ET blob, reference's TC another blob: no overlap.
    # official: Dice 0, HD95 inf (its summary writes 373); ours: Dice 0, measured distance
    assert official["TC"][0] == 0.0 and math.isinf(official["TC"][1])
    assert ours["TC"]["dice"] == 0.0 and 0 < ours["TC"]["hd95"] < HD95_EMPTY
    # ET: empty reference, non-empty prediction: official inf, ours 373.13
    assert official["ET"][0] == 0.0 and math.isinf(official["ET"][1])
    assert ours["ET"]["hd95"] == HD95_EMPTY
    # both empty: official NaN, ours Dice 1 and HD95 0
    empty = official_scores(official_evaluator, _labels(), _labels(), "brats2023")
    assert all(math.isnan(v) for pair in empty.values() for v in pair)
    both_empty = evaluate_case(_labels(), _labels(), None, "brats2023")
    assert all(both_empty[r]["dice"] == 1.0 and both_empty[r]["hd95"] == 0.0 for r in REGIONS)


def test_official_ignores_spacing_we_use_it(official_evaluator, tmp_path):
    """With 1x1x3 mm voxels the official whole-region HD95 stays in voxels; ours is in mm."""
    from brats_evaluation import evaluate_single_exam

    ref = _labels()
    ref[5:10, 5:10, 5:10] = 2
    pred = np.roll(ref, 2, axis=2)  # shifted 2 voxels along the 3 mm axis
    aff = np.diag([1.0, 1.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(ref, aff), str(tmp_path / "ref.nii.gz"))
    nib.save(nib.Nifti1Image(pred, aff), str(tmp_path / "pred.nii.gz"))
    res = evaluate_single_exam(str(tmp_path / "pred.nii.gz"), str(tmp_path / "ref.nii.gz"), "x", official_evaluator)
    ours_vox = evaluate_case(pred, ref, (1.0, 1.0, 1.0), "brats2023")["WT"]["hd95"]
    ours_mm = evaluate_case(pred, ref, (1.0, 1.0, 3.0), "brats2023")["WT"]["hd95"]
    assert res["wt"]["global_bin_hd95"] == pytest.approx(ours_vox, abs=0.01)
    assert ours_vox == pytest.approx(2.0) and ours_mm == pytest.approx(6.0)

