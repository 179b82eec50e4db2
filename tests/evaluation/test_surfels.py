"""Surfel HD95 (DeepMind's method, the BraTS 2023+ lesion-wise definition) against a plain port of it."""

from __future__ import annotations

from pathlib import Path

import deepmind_port as port
import nibabel as nib
import numpy as np
import pytest
from brats_official import REAL_LABELS, perturb
from scipy import ndimage

from brats_seg.conventions import labels_to_regions
from brats_seg.evaluation.distances import area_percentile, neighbour_codes, surfel_area_table
from brats_seg.evaluation.metrics import hd95

SPACINGS = [(1.0, 1.0, 1.0), (0.9, 1.1, 2.5)]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_area_table_is_deepminds(spacing):
    """The surface-distance package's table equals MONAI's copy of DeepMind's, summed triangle by triangle."""
    np.testing.assert_array_equal(surfel_area_table(spacing), port.area_table(spacing))
    assert surfel_area_table((1.0, 1.0, 1.0))[1] == pytest.approx(np.sqrt(3) / 8)  # one corner: a triangle


def test_neighbour_codes_equal_deepminds_correlation():
    rng = np.random.default_rng(0)
    mask = ndimage.binary_dilation(rng.random((9, 7, 8)) > 0.97, iterations=1)
    crop = np.zeros(np.array(mask.shape) + 1, np.uint8)
    crop[:-1, :-1, :-1] = mask
    np.testing.assert_array_equal(neighbour_codes(mask), ndimage.correlate(crop, port.KERNEL, mode="constant"))


def test_area_percentile_weights_by_area():
    d = np.array([3.0, 0.0, 2.0, 1.0])
    assert area_percentile(d, np.ones(4), 95) == 3.0
    assert area_percentile(d, np.array([1.0, 100.0, 1.0, 1.0]), 95) == 0.0  # the 0 mm element holds 97 % of the area
    assert area_percentile(np.array([]), np.array([]), 95) == np.inf


def test_surfel_hd95_hand_cases():
    cube = np.zeros((12, 12, 12), bool)
    cube[3:7, 3:7, 3:7] = True
    assert hd95(cube, cube, mode="surfel") == 0.0
    assert hd95(np.roll(cube, 1, axis=0), cube, mode="surfel") == pytest.approx(1.0)
    assert hd95(np.roll(cube, 1, axis=2), cube, (1.0, 1.0, 3.0), mode="surfel") == pytest.approx(3.0)


@pytest.mark.parametrize("seed", range(3))
def test_surfel_hd95_equals_port_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    ref = ndimage.binary_dilation(rng.random((22, 18, 15)) > 0.985, iterations=2)
    pred = ndimage.binary_dilation(rng.random(ref.shape) > 0.99, iterations=1) | np.roll(ref, 2, axis=seed % 3)
    for spacing in SPACINGS:
        assert hd95(pred, ref, spacing, mode="surfel") == pytest.approx(port.hd95(pred, ref, spacing), abs=1e-9)


def _real_regions(shared_data, case_id):
    rel, scheme = REAL_LABELS[case_id]
    ref = np.rint(np.asarray(nib.load(str(Path(shared_data) / rel)).dataobj)).astype(np.uint8)
    return labels_to_regions(perturb(ref, scheme), scheme), labels_to_regions(ref, scheme)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("case_id", ["Brats18_TCIA01_201_1", "BraTS-GLI-00000-000"])
def test_surfel_hd95_equals_port_on_real_cases(shared_data, case_id):
    """Perturbed real maps, WT/TC/ET, 1 mm and anisotropic spacing: equal to 1e-9 mm; the voxel-surface
    definitions (pooled, max) differ from it."""
    preds, refs = _real_regions(shared_data, case_id)
    apart = 0.0
    for pred, ref in zip(preds, refs):
        for spacing in SPACINGS:
            ours = hd95(pred, ref, spacing, mode="surfel")
            assert ours == pytest.approx(port.hd95(pred, ref, spacing), abs=1e-9)
            apart = max(apart, abs(ours - hd95(pred, ref, spacing, mode="max")))
    assert apart > 0.1
