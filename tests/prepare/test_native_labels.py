"""``segment`` maps labels back to the native grids through the scheme's default output regions, so every label
of the 2024 schemes survives (brats2024-gli's resection cavity, PED's cyst), and WT/TC/ET maps are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from brats_seg.conventions import get_scheme, labels_to_regions, regions_to_labels
from brats_seg.prepare.spatial_transforms import array_of, image_of, resample, resample_labels


def _labels(values):
    """Nested blocks, one label each, on a 24³ grid (the last value innermost)."""
    lab = np.zeros((24, 24, 24), np.uint8)
    for i, v in enumerate(values):
        lab[2 + 2 * i:22 - 2 * i, 2 + 2 * i:22 - 2 * i, 2 + 2 * i:22 - 2 * i] = v
    lab[2:6, 2:6, 2:6] = values[-1]  # a corner of the innermost label on the edge too
    return lab


def _grids(spacing):
    atlas = sitk.Image(24, 24, 24, sitk.sitkFloat32)
    native = sitk.Image(*(int(24 / s) for s in spacing), sitk.sitkFloat32)
    native.SetSpacing(spacing)
    return atlas, native


@pytest.mark.parametrize("scheme,values", [("brats2024-gli", (2, 1, 3, 4)), ("brats2024-ped", (4, 2, 3, 1)),
                                           ("brats2024-men-rt", (1,))])
def test_every_label_of_the_2024_schemes_survives_the_native_grid(scheme, values):
    lab = _labels(values)
    atlas, same = _grids((1.0, 1.0, 1.0))
    assert np.array_equal(resample_labels(lab, atlas, same, sitk.Transform(), scheme), lab)
    atlas, fine = _grids((0.5, 0.5, 2.0))  # a finer in-plane, thicker-slice native grid
    native = resample_labels(lab, atlas, fine, sitk.Transform(), scheme)
    assert set(np.unique(native)) == {0, *values}


def test_wt_tc_et_maps_are_resampled_as_before():
    """brats2021: identical to resampling the nested WT/TC/ET regions and writing them back."""
    lab = _labels((2, 1, 4))
    atlas, native = _grids((0.7, 1.3, 2.0))
    regions = labels_to_regions(lab, get_scheme("brats2021")).astype(np.float32)
    moved = np.stack([array_of(resample(image_of(r, atlas), native, sitk.Transform())) for r in regions])
    expected = regions_to_labels(moved > 0.5, "brats2021")
    assert np.array_equal(resample_labels(lab, atlas, native, sitk.Transform(), "brats2021"), expected)
