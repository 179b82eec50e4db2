"""Postprocessing rules on hand-made masks."""

from __future__ import annotations

import numpy as np

from brats_seg.conventions import get_scheme, labels_to_regions
from brats_seg.inference.postprocess import (
    PostprocessConfig,
    postprocess_regions,
    probabilities_to_labels,
    remove_small_components,
)


def regions(shape=(20, 20, 20)):
    r = np.zeros((3, *shape), bool)
    r[0, 2:12, 2:12, 2:12] = True      # a big tumor (1000 voxels)
    r[1, 4:10, 4:10, 4:10] = True      # core (216)
    r[2, 5:7, 5:7, 5:7] = True         # tiny ET (8)
    r[0, 16:18, 16:18, 16:18] = True   # a small separate WT blob (8)
    return r


def test_probabilities_to_labels_enforce_nesting():
    p = np.zeros((3, 4, 4, 4), np.float32)
    p[2, 0] = 0.9          # ET without TC or WT: dropped
    p[1, 1] = p[0, 1] = 0.9  # TC inside WT
    p[0, 2] = 0.7
    labels, _ = probabilities_to_labels(p, "brats2023")
    assert labels.dtype == np.uint8
    assert (labels[0] == 0).all() and (labels[1] == 1).all() and (labels[2] == 2).all() and (labels[3] == 0).all()
    r = labels_to_regions(labels, "brats2023")
    assert (r[2] <= r[1]).all() and (r[1] <= r[0]).all()


def test_threshold_is_configurable():
    p = np.full((3, 2, 2, 2), 0.4, np.float32)
    assert probabilities_to_labels(p, "brats2021")[0].max() == 0
    assert (probabilities_to_labels(p, "brats2021", PostprocessConfig(threshold=0.3))[0] == 4).all()


def test_small_et_relabeled_as_core():
    r = regions()
    out, record = postprocess_regions(r, PostprocessConfig(et_min_voxels=9))
    assert not out[2].any() and record["et_relabeled_as_core"] and record["et_voxels"] == 8
    np.testing.assert_array_equal(out[1], r[1])  # former ET stays tumor core
    labels, _ = probabilities_to_labels(r.astype(np.float32), "brats2021", PostprocessConfig(et_min_voxels=9))
    assert (labels[5:7, 5:7, 5:7] == get_scheme("brats2021").region_labels["TC"]).all()  # necrosis/core label 1
    kept, record = postprocess_regions(r, PostprocessConfig(et_min_voxels=8))
    assert kept[2].sum() == 8 and not record["et_relabeled_as_core"]


def test_small_components_removed_with_their_core():
    r = regions()
    r[1, 16, 16, 16] = r[2, 16, 16, 16] = True  # core + ET inside the small blob
    out, record = postprocess_regions(r, PostprocessConfig(min_component_voxels=9))
    assert not out[:, 14:, 14:, 14:].any()
    assert out[0].sum() == 1000 and record["removed_wt_voxels"] == 8
    assert out[2].sum() == 8  # ET inside the big tumor untouched
    # diagonal neighbours belong to the same (26-connected) component
    m = np.zeros((5, 5, 5), bool)
    m[1, 1, 1] = m[2, 2, 2] = m[3, 3, 3] = True
    assert remove_small_components(m, 3).sum() == 3 and remove_small_components(m, 4).sum() == 0


def test_all_rules_off_changes_nothing():
    r = regions()
    out, record = postprocess_regions(r, PostprocessConfig())
    np.testing.assert_array_equal(out, r)
    assert record == {}


def test_components_relative_to_the_largest():
    r = regions()
    only_largest, record = postprocess_regions(r, PostprocessConfig(wt_component_fraction=1.0))
    assert only_largest[0].sum() == 1000 and not only_largest[0, 16:, 16:, 16:].any()
    assert record["removed_wt_voxels"] == 8
    assert postprocess_regions(r, PostprocessConfig(wt_component_fraction=0.008))[0][0].sum() == 1008  # 8 >= 8
    assert postprocess_regions(r, PostprocessConfig(wt_component_fraction=0.009))[0][0].sum() == 1000
    mask = np.zeros((6, 6, 6), bool)
    mask[0, 0, 0] = mask[3, 3, 3] = True  # two components of equal size: both are the largest
    assert remove_small_components(mask, fraction=1.0).sum() == 2


def test_the_rule_comes_from_the_checkpoints_unless_given():
    import pytest

    from brats_seg.errors import BratsSegError
    from brats_seg.inference.postprocess import resolve_postprocess

    recorded = {"threshold": 0.5, "min_component_voxels": 0, "et_min_voxels": 0, "wt_component_fraction": 1.0}
    assert resolve_postprocess(None, [recorded, recorded], ["a", "b"]).wt_component_fraction == 1.0
    assert resolve_postprocess(None, [None], ["old"]) == PostprocessConfig()
    defaults = {"threshold": 0.5, "min_component_voxels": 0, "et_min_voxels": 0, "wt_component_fraction": 0.0}
    assert resolve_postprocess(None, [defaults, None], ["new", "old"]) == PostprocessConfig()  # none recorded: defaults
    changed = resolve_postprocess({"wt_component_fraction": 0.0, "et_min_voxels": 5}, [recorded], ["a"])
    assert changed == PostprocessConfig(et_min_voxels=5)
    assert resolve_postprocess(PostprocessConfig(), [recorded], ["a"]) == PostprocessConfig()
    with pytest.raises(BratsSegError, match="record different postprocessing"):
        resolve_postprocess(None, [recorded, None], ["a", "b"])
    with pytest.raises(BratsSegError, match=r"wt_component_fraction must be in \[0, 1\]"):
        resolve_postprocess({"wt_component_fraction": 2.0}, [None], ["a"])
