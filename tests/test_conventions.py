from itertools import product

import numpy as np
import pytest

from brats_seg.conventions import (
    LABEL_SCHEMES,
    MODALITIES,
    canonical_modality,
    convert_labels,
    detect_scheme,
    get_scheme,
    labels_to_regions,
    regions_to_labels,
)
from brats_seg.errors import BratsSegError


@pytest.mark.parametrize("alias,canon", [("t1", "t1n"), ("T1ce", "t1c"), ("t1Gd", "t1c"), ("t2", "t2w"),
                                         ("FLAIR", "t2f"), ("T1w", "t1n"), ("T2w", "t2w"), ("t2f", "t2f")])
def test_modality_aliases(alias, canon):
    assert canonical_modality(alias) == canon


def test_unknown_modality_lists_valid():
    with pytest.raises(BratsSegError, match="accepted"):
        canonical_modality("pd")


def _all_regions_volume():
    """Every consistent region combination once: bg, WT only, WT+TC, WT+TC+ET."""
    return np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], bool).T.reshape(3, 4, 1, 1)


@pytest.mark.parametrize("src,dst", list(product(LABEL_SCHEMES, LABEL_SCHEMES)))
def test_round_trip_between_schemes(src, dst):
    regions = _all_regions_volume()
    labels = regions_to_labels(regions, src)
    converted = convert_labels(labels, src, dst)
    assert set(np.unique(converted)) <= get_scheme(dst).values
    np.testing.assert_array_equal(labels_to_regions(converted, dst), regions)
    np.testing.assert_array_equal(convert_labels(converted, dst, src), labels)


def test_known_label_values():
    assert regions_to_labels(_all_regions_volume(), "brats2021").ravel().tolist() == [0, 2, 1, 4]
    assert regions_to_labels(_all_regions_volume(), "brats2023").ravel().tolist() == [0, 2, 1, 3]
    assert regions_to_labels(_all_regions_volume(), "msd").ravel().tolist() == [0, 1, 2, 3]
    assert get_scheme("brats2021").et_label == 4 and get_scheme("brats2023").et_label == 3


def test_regions_to_labels_enforces_nesting():
    # ET without TC/WT must not produce an ET voxel outside WT
    regions = np.zeros((3, 2, 1, 1), bool)
    regions[2, 0] = True          # ET alone
    regions[1, 1] = regions[2, 1] = True  # TC+ET without WT
    out = regions_to_labels(regions, "brats2021")
    assert out.ravel().tolist() == [0, 0]
    back = labels_to_regions(out, "brats2021")
    assert (back[2] <= back[1]).all() and (back[1] <= back[0]).all()


def test_brats2015_core_merges_to_one_label():
    lab = np.array([0, 1, 2, 3, 4]).reshape(5, 1, 1)
    assert convert_labels(lab, "brats2015", "brats2021").ravel().tolist() == [0, 1, 2, 1, 4]


def test_detect_scheme():
    assert detect_scheme([0, 1, 2, 4]) == "brats2021"
    assert detect_scheme([0, 1, 2, 3, 4]) == "brats2015"
    with pytest.raises(BratsSegError, match="ambiguous"):
        detect_scheme([0, 1, 2, 3])
    assert detect_scheme([0, 1, 2, 3], hint="brats2023") == "brats2023"
    with pytest.raises(BratsSegError, match="fit no known scheme"):
        detect_scheme([0, 7])
    with pytest.raises(BratsSegError, match="do not fit"):
        detect_scheme([0, 4], hint="msd")


def test_modalities_canonical_order():
    assert MODALITIES == ("t1n", "t1c", "t2w", "t2f")
