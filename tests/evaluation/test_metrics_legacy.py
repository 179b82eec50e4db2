"""Legacy BraTS metrics against hand-computed answers and a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from brats_seg.conventions import LABEL_SCHEMES, REGIONS, AmbiguousSchemeError, convert_labels
from brats_seg.errors import BratsSegError
from brats_seg.evaluation.metrics import (
    HD95_EMPTY,
    dice,
    evaluate_case,
    hd95,
    region_metrics,
    surface,
)


def _mask(shape=(12, 12, 12), *boxes):
    m = np.zeros(shape, bool)
    for box in boxes:
        m[box] = True
    return m


def test_dice_hand_computed():
    ref = _mask((8, 8, 8), np.s_[2:4, 2:4, 2:4])  # 8 voxels
    pred = _mask((8, 8, 8), np.s_[3:5, 2:4, 2:4])  # 8 voxels, 4 shared
    assert dice(pred, ref) == pytest.approx(0.5)
    assert dice(ref, ref) == 1.0
    assert dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 4))) == 1.0
    assert dice(np.zeros((4, 4, 4)), ref[:4, :4, :4]) == 0.0


def test_hd95_single_voxels_and_anisotropic_spacing():
    ref = _mask((10, 10, 10), np.s_[1, 1, 1])
    pred = _mask((10, 10, 10), np.s_[4, 1, 1])  # 3 voxels along axis 0
    assert hd95(pred, ref) == pytest.approx(3.0)
    assert hd95(pred, ref, (2.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert hd95(pred, ref, (1.0, 5.0, 5.0)) == pytest.approx(3.0)
    diag = _mask((10, 10, 10), np.s_[4, 5, 1])  # (3, 4, 0) voxels away
    assert hd95(diag, ref, (1.0, 1.0, 7.0)) == pytest.approx(5.0)
    assert hd95(diag, ref, (2.0, 1.5, 7.0)) == pytest.approx(np.hypot(6.0, 6.0))
    assert hd95(ref, ref, (0.5, 3.0, 2.0)) == 0.0


def test_hd95_pooled_versus_max_hand_computed():
    ref = _mask((16, 4, 4), np.s_[0, 0, 0])
    pred = _mask((16, 4, 4), np.s_[0, 0, 0], np.s_[10, 0, 0])
    # ref->pred distances [0]; pred->ref [0, 10]
    # pooled: 95th percentile of [0, 0, 10] (linear) = 9; max: max(0, 9.5) = 9.5
    assert hd95(pred, ref, mode="pooled") == pytest.approx(9.0)
    assert hd95(pred, ref, mode="max") == pytest.approx(9.5)
    with pytest.raises(BratsSegError, match="hd95 mode"):
        hd95(pred, ref, mode="mean")


def test_empty_rules():
    empty = np.zeros((6, 6, 6), bool)
    full = _mask((6, 6, 6), np.s_[2:4, 2:4, 2:4])
    assert hd95(empty, empty) == 0.0
    assert hd95(full, empty) == HD95_EMPTY == 373.13
    assert hd95(empty, full, (3.0, 3.0, 3.0)) == 373.13
    m = region_metrics(empty, empty)
    assert m["dice"] == 1.0 and m["hd95"] == 0.0 and m["sensitivity"] == 1.0 and m["specificity"] == 1.0
    m = region_metrics(empty, full)
    assert m["dice"] == 0.0 and m["hd95"] == 373.13 and m["sensitivity"] == 0.0
    # empty reference, non-empty prediction: sensitivity 0 as BraTS-2023-Metrics gives it (tp / (tp + fn + eps))
    m = region_metrics(full, empty)
    assert m["dice"] == 0.0 and m["hd95"] == 373.13 and m["sensitivity"] == 0.0


def test_region_metrics_hand_computed():
    ref = _mask((10, 10, 10), np.s_[0:4, 0:2, 0:1])  # 8 voxels
    pred = _mask((10, 10, 10), np.s_[2:6, 0:2, 0:1])  # 8 voxels, tp=4, fp=4, fn=4
    m = region_metrics(pred, ref, (2.0, 1.0, 1.0))
    assert m["dice"] == pytest.approx(0.5)
    assert m["sensitivity"] == pytest.approx(0.5)
    assert m["specificity"] == pytest.approx((1000 - 12) / (1000 - 8))
    assert m["volume_ref_ml"] == pytest.approx(8 * 2.0 / 1000)
    assert m["volume_pred_ml"] == pytest.approx(0.016)
    # surfaces are the whole masks (2 thick); every surface voxel of one is 0 or 2 voxels (4 mm) from the other
    # ref->pred: rows x=0,1 -> 4 mm, x=2,3 -> 0;  pred->ref: x=2,3 -> 0, x=4,5 -> 4 mm; half 0, half 4 mm
    assert m["hd95"] == pytest.approx(4.0)


def _brute_hd95(pred, ref, spacing, mode):
    sp = np.asarray(spacing)
    a = np.argwhere(surface(ref)) * sp
    b = np.argwhere(surface(pred)) * sp
    d = cdist(a, b)
    d_ref, d_pred = d.min(axis=1), d.min(axis=0)
    if mode == "pooled":
        return np.percentile(np.concatenate([d_ref, d_pred]), 95)
    return max(np.percentile(d_ref, 95), np.percentile(d_pred, 95))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["pooled", "max"])
def test_hd95_matches_brute_force_oracle(seed, mode):
    """Random blobs, some touching the array border; the cropped EDT must equal all-pairs distances."""
    rng = np.random.default_rng(seed)
    shape = (18, 15, 12)
    ref = ndimage.binary_dilation(rng.random(shape) > 0.985, iterations=2)
    pred = ndimage.binary_dilation(rng.random(shape) > 0.985, iterations=1) | np.roll(ref, 2, axis=seed % 3)
    spacing = (1.0, 0.7, 2.5)
    assert hd95(pred, ref, spacing, mode=mode) == pytest.approx(_brute_hd95(pred, ref, spacing, mode), abs=1e-9)


def _label_map(shape=(20, 20, 16), shift=0):
    """brats2021 labels: edema box, core box, enhancing box inside."""
    lab = np.zeros(shape, np.uint8)
    lab[4 + shift:14 + shift, 4:14, 3:12] = 2
    lab[6 + shift:12 + shift, 6:12, 5:10] = 4
    lab[8 + shift:10 + shift, 8:10, 6:9] = 1
    return lab


NESTED = sorted(s.name for s in LABEL_SCHEMES.values() if s.nested)


@pytest.mark.parametrize("pred_scheme", NESTED)
@pytest.mark.parametrize("ref_scheme", NESTED)
def test_every_label_scheme_pair(pred_scheme, ref_scheme):
    lab = _label_map()
    pred = convert_labels(lab, "brats2021", pred_scheme)
    ref = convert_labels(_label_map(shift=1), "brats2021", ref_scheme)
    got = evaluate_case(pred, ref, (1.0, 1.0, 1.0), pred_scheme, ref_scheme, groups=REGIONS)
    want = evaluate_case(lab, _label_map(shift=1), (1.0, 1.0, 1.0), "brats2021")
    assert got == want
    same = evaluate_case(pred, convert_labels(lab, "brats2021", ref_scheme), None, pred_scheme, ref_scheme,
                         groups=REGIONS)
    assert all(same[r]["dice"] == 1.0 and same[r]["hd95"] == 0.0 for r in ("WT", "TC", "ET"))


def test_evaluate_case_hand_computed_regions():
    lab = _label_map()
    shifted = _label_map(shift=1)
    res = evaluate_case(shifted, lab, (1.0, 1.0, 1.0), "brats2021")
    # WT box 10x10x9 shifted by one along axis 0: overlap 9x10x9
    assert res["WT"]["dice"] == pytest.approx(2 * 9 * 10 * 9 / (2 * 900))
    assert res["WT"]["hd95"] == pytest.approx(1.0)
    tc = 6 * 6 * 5
    assert res["TC"]["dice"] == pytest.approx(2 * 5 * 6 * 5 / (2 * tc))
    et = tc - 2 * 2 * 3
    assert res["ET"]["volume_ref_ml"] == pytest.approx(et / 1000)
    assert res["WT"]["specificity"] == pytest.approx((lab.size - 900 - 90) / (lab.size - 900))


def test_evaluate_case_crop_equals_full_volume():
    rng = np.random.default_rng(3)
    ref = _label_map((30, 28, 24))
    pred = np.roll(ref, (2, -1, 1), axis=(0, 1, 2))
    pred[rng.random(pred.shape) > 0.995] = 2  # scattered false positives anywhere in the volume
    res = evaluate_case(pred, ref, (1.2, 1.0, 2.0), "brats2021", hd95_mode="max")
    full = {r: region_metrics(np.isin(pred, sorted(LABEL_SCHEMES["brats2021"].regions[r])),
                              np.isin(ref, sorted(LABEL_SCHEMES["brats2021"].regions[r])),
                              (1.2, 1.0, 2.0), hd95_mode="max") for r in ("WT", "TC", "ET")}
    for r in full:
        for k in full[r]:
            assert res[r][k] == pytest.approx(full[r][k], abs=1e-12), (r, k)


def test_evaluate_case_empty_and_detection():
    empty = np.zeros((8, 8, 8), np.uint8)
    res = evaluate_case(empty, empty)
    assert res["ET"] == {"dice": 1.0, "hd95": 0.0, "sensitivity": 1.0, "specificity": 1.0,
                         "volume_ref_ml": 0.0, "volume_pred_ml": 0.0}
    lab = _label_map()
    with pytest.raises(AmbiguousSchemeError, match="--label-scheme"):  # 4: brats2021's ET, or a 2024+ RC or ED
        evaluate_case(np.zeros_like(lab), lab)
    res = evaluate_case(np.zeros_like(lab), lab, ref_scheme="brats2021")
    assert res["WT"]["dice"] == 0.0 and res["TC"]["hd95"] == 373.13 and res["ET"]["sensitivity"] == 0.0
    with pytest.raises(BratsSegError, match="ambiguous"):
        evaluate_case(np.ones((4, 4, 4), np.uint8), np.full((4, 4, 4), 2, np.uint8))


def test_evaluate_case_rejects_bad_input():
    lab = _label_map()
    with pytest.raises(BratsSegError, match="shape"):
        evaluate_case(lab[:-1], lab, None, "brats2021")
    with pytest.raises(BratsSegError, match=r"\[4\] outside scheme brats2023"):
        evaluate_case(lab, lab, None, "brats2023")
    with pytest.raises(BratsSegError, match="non-integer"):
        evaluate_case(lab.astype(np.float32) + 0.5, lab, None, "brats2021")
    with pytest.raises(BratsSegError, match="spacing"):
        evaluate_case(lab, lab, (1.0, 1.0), "brats2021")


def test_float_labels_accepted():
    lab = _label_map()
    res = evaluate_case(lab.astype(np.float32), lab, None, "brats2021")
    assert res["ET"]["dice"] == 1.0


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 1.3, 3.0)])
def test_kdtree_and_distance_transform_agree(spacing):
    from brats_seg.evaluation.distances import surface_distances

    rng = np.random.default_rng(7)
    ref = ndimage.binary_dilation(rng.random((20, 18, 16)) > 0.99, iterations=2)
    pred = np.roll(ref, 1, axis=1) | ndimage.binary_dilation(rng.random((20, 18, 16)) > 0.995)
    a = surface_distances(pred, ref, spacing, method="kdtree")
    b = surface_distances(pred, ref, spacing, method="edt")
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.sort(x), np.sort(y), atol=1e-12)
    assert a[0].max() > 0
    with pytest.raises(BratsSegError, match="distance method"):
        surface_distances(pred, ref, method="brute")
