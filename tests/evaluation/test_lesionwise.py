"""BraTS 2023+ lesion-wise scores: hand-computed cases and a port of the reference algorithm as oracle."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from deepmind_port import hd95 as surfel_hd95
from scipy import ndimage

from brats_seg.errors import BratsSegError
from brats_seg.evaluation.lesionwise import CHALLENGES, get_challenge, lesionwise_case, lesionwise_region
from brats_seg.evaluation.metrics import dice, hd95

SHAPE = (40, 24, 24)


def _cubes(*starts, size=4):
    m = np.zeros(SHAPE, bool)
    for x in starts:
        m[x:x + size, 8:8 + size, 8:8 + size] = True
    return m


def test_matched_missed_and_false_positive():
    ref = _cubes(2, 20)  # two 64-voxel lesions
    pred = _cubes(2, 32)  # the first exactly, and a false positive
    s = lesionwise_region(pred, ref, challenge="gli")
    assert (s["lesions_tp"], s["lesions_fn"], s["lesions_fp"]) == (1, 1, 1)
    assert s["lesion_dice"] == pytest.approx(1 / 3)
    assert s["lesion_hd95"] == pytest.approx(2 * 374 / 3)


def test_small_reference_lesions_dropped_but_not_false_positive():
    ref = _cubes(2, size=3)  # 27 voxels <= 50
    s = lesionwise_region(ref, ref, challenge="gli")
    assert s == {"lesion_dice": 1.0, "lesion_hd95": 0.0, "lesions_tp": 0, "lesions_fn": 0, "lesions_fp": 0}
    s = lesionwise_region(ref, ref, challenge="met")  # threshold 2 keeps it
    assert s["lesions_tp"] == 1 and s["lesion_dice"] == 1.0
    # a 50-voxel lesion is at the threshold: dropped; 51 kept
    m = np.zeros(SHAPE, bool)
    m.flat[np.ravel_multi_index(np.nonzero(_cubes(2, size=4)), SHAPE)[:50]] = True
    assert lesionwise_region(np.zeros_like(m), m, challenge="gli")["lesions_fn"] == 0
    m.flat[np.ravel_multi_index(np.nonzero(_cubes(2, size=4)), SHAPE)[:51]] = True
    assert lesionwise_region(np.zeros_like(m), m, challenge="gli")["lesions_fn"] == 1


def test_lesions_merged_by_dilation_per_challenge():
    ref = _cubes(2, 9)  # gap of 3 voxels (x = 6, 7, 8)
    pred = _cubes(2)
    gli = lesionwise_region(pred, ref, challenge="gli")  # dilation 3 merges them into one 128-voxel lesion
    assert gli["lesions_tp"] == 1 and gli["lesions_fn"] == 0
    assert gli["lesion_dice"] == pytest.approx(2 * 64 / (64 + 128))
    assert gli["lesion_hd95"] == pytest.approx(hd95(pred, ref, mode="surfel"))
    men = lesionwise_region(pred, ref, challenge="men")  # dilation 1: two lesions, one missed
    assert (men["lesions_tp"], men["lesions_fn"]) == (1, 1)
    assert men["lesion_dice"] == pytest.approx(0.5) and men["lesion_hd95"] == pytest.approx(187.0)


def test_prediction_matched_through_dilated_reference():
    ref = _cubes(2)  # x 2..5
    pred = _cubes(8)  # x 8..11: two voxels of gap (6, 7)
    gli = lesionwise_region(pred, ref, challenge="gli")
    assert (gli["lesions_tp"], gli["lesions_fp"]) == (1, 0)
    assert gli["lesion_dice"] == 0.0 and gli["lesion_hd95"] == pytest.approx(6.0)
    men = lesionwise_region(pred, ref, challenge="men")
    assert (men["lesions_tp"], men["lesions_fn"], men["lesions_fp"]) == (0, 1, 1)
    assert men["lesion_hd95"] == pytest.approx(374.0)


def test_empty_cases_and_registry():
    empty = np.zeros(SHAPE, bool)
    assert lesionwise_region(empty, empty)["lesion_dice"] == 1.0
    s = lesionwise_region(_cubes(2), empty)
    assert s["lesion_dice"] == 0.0 and s["lesion_hd95"] == 374.0 and s["lesions_fp"] == 1
    assert set(CHALLENGES) == {"gli", "ssa", "ped", "men", "met"}
    assert get_challenge("BraTS-MET").volume_threshold == 2.0
    assert get_challenge("PED").dilation_iterations == 3
    with pytest.raises(BratsSegError, match="valid: gli"):
        get_challenge("xyz")


def test_challenge_from_the_case_id():
    from brats_seg.evaluation.lesionwise import challenge_for

    assert [challenge_for(c) for c in ("BraTS-MET-00001-000", "BraTS-PED-00001-000", "BraTS-MEN-RT-0001-1",
                                        "BraTS-SSA-00001-000", "BraTS-GLI-00001-000", "Brats18_X", "case7")] == [
        "met", "ped", "men", "ssa", "gli", "gli", "gli"]


def test_lesionwise_case_with_label_schemes():
    ref = np.zeros(SHAPE, np.uint8)
    ref[_cubes(2, size=6)] = 2
    ref[_cubes(3, size=4)] = 3  # ET (brats2023)
    pred21 = np.where(ref == 3, 4, ref).astype(np.uint8)  # same map in brats2021
    res = lesionwise_case(pred21, ref, (1, 1, 1), "brats2021", "brats2023", challenge="gli")
    assert all(res[r]["lesion_dice"] == 1.0 and res[r]["lesion_hd95"] == 0.0 for r in ("WT", "TC", "ET"))
    assert res["ET"]["lesions_tp"] == 1


def _reference_port(pred, ref, dil, thresh):
    """Straight port of the challenge algorithm (full volume, loops; HD95 by the plain DeepMind port)."""
    ball = ndimage.generate_binary_structure(3, 2)
    gt_cc = cc3d.connected_components(ref.astype(np.uint8), connectivity=26)
    pred_cc = cc3d.connected_components(pred.astype(np.uint8), connectivity=26)
    dil_cc = cc3d.connected_components(ndimage.binary_dilation(ref, ball, dil).astype(np.uint8), connectivity=26)
    combined = np.where(gt_cc > 0, dil_cc, 0)
    dices, hds, tps = [], [], []
    for k in range(1, combined.max() + 1):
        gt_k = combined == k
        region = ndimage.binary_dilation(gt_k, ball, dil)
        hit = np.unique(pred_cc[region])
        hit = hit[hit != 0]
        tps += list(hit)
        pred_k = np.isin(pred_cc, hit)
        if gt_k.sum() > thresh:
            dices.append(dice(pred_k, gt_k) if hit.size else 0.0)
            hds.append(surfel_hd95(pred_k, gt_k) if hit.size else 374.0)
    n_fp = len(set(np.unique(pred_cc)) - set(tps) - {0})
    dices += [0.0] * n_fp
    hds += [374.0] * n_fp
    return (np.mean(dices), np.mean(hds)) if dices else (1.0, 0.0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("challenge", ["gli", "met"])
def test_agrees_with_reference_algorithm(seed, challenge):
    rng = np.random.default_rng(seed)
    ref = ndimage.binary_dilation(rng.random(SHAPE) > 0.997, iterations=2)
    pred = np.roll(ref, 1, axis=seed % 3) & (rng.random(SHAPE) > 0.1)
    pred |= ndimage.binary_dilation(rng.random(SHAPE) > 0.999, iterations=1)
    p = get_challenge(challenge)
    want = _reference_port(pred, ref, p.dilation_iterations, p.volume_threshold)
    got = lesionwise_region(pred, ref, challenge=challenge)
    assert got["lesion_dice"] == pytest.approx(want[0], abs=1e-12)
    assert got["lesion_hd95"] == pytest.approx(want[1], abs=1e-9)


@pytest.mark.realdata
@pytest.mark.parametrize("challenge", ["gli", "men"])
def test_real_case_agrees_with_reference_algorithm(shared_data, challenge):
    """A real BraTS 2018 label map with a shifted, fragmented prediction plus far false positives."""
    import nibabel as nib

    from brats_seg.conventions import labels_to_regions

    ref_labels = np.asarray(nib.load(str(shared_data / "brats2018" / "Brats18_TCIA01_201_1" /
                                         "Brats18_TCIA01_201_1_seg.nii.gz")).dataobj).astype(np.uint8)
    rng = np.random.default_rng(1)
    pred_labels = np.roll(ref_labels, (1, 2, 0), axis=(0, 1, 2))
    pred_labels[rng.random(pred_labels.shape) > 0.99995] = 4  # scattered single-voxel false positives
    refs, preds = labels_to_regions(ref_labels, "brats2021"), labels_to_regions(pred_labels, "brats2021")
    p = get_challenge(challenge)
    for i in (0, 2):  # WT and ET
        ref, pred = refs[i], preds[i]
        # the port runs on the box around the tumor (far false positives outside it are counted separately)
        idx = np.argwhere(ref)
        box = tuple(slice(max(lo - 8, 0), hi + 9) for lo, hi in zip(idx.min(0), idx.max(0)))
        outside = pred.copy()
        outside[box] = False
        n_outside = ndimage.label(outside, structure=np.ones((3, 3, 3)))[1]
        got = lesionwise_region(pred, ref, challenge=challenge)
        d, h = _reference_port(pred[box], ref[box], p.dilation_iterations, p.volume_threshold)
        n_box = got["lesions_tp"] + got["lesions_fn"] + got["lesions_fp"] - n_outside
        want_dice = d * n_box / (n_box + n_outside)
        want_hd = (h * n_box + 374.0 * n_outside) / (n_box + n_outside)
        assert n_outside > 10 and got["lesions_tp"] >= 1
        assert got["lesion_dice"] == pytest.approx(want_dice, abs=1e-9)
        assert got["lesion_hd95"] == pytest.approx(want_hd, abs=1e-6)
