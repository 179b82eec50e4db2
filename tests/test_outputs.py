"""A model's outputs are data (issue 20): per-scheme defaults, exact write-back, refusals, targets per case."""

from __future__ import annotations

import numpy as np
import pytest

from brats_seg.conventions import LABEL_SCHEMES, group_masks, regions_to_labels
from brats_seg.errors import BratsSegError
from brats_seg.outputs import Outputs, default_outputs, label_outputs, outputs_of, region_outputs

DEFAULTS = {
    "brats2015": (("WT", "TC", "ET"), (2, 1, 4)), "brats2021": (("WT", "TC", "ET"), (2, 1, 4)),
    "brats2023": (("WT", "TC", "ET"), (2, 1, 3)), "msd": (("WT", "TC", "ET"), (1, 2, 3)),
    "brats2024-gli": (("WT", "TC", "ET", "RC"), (2, 1, 3, 4)),
    "brats2024-met": (("WT", "TC", "ET", "RC"), (2, 1, 3, 4)),
    "brats2024-ped": (("ED", "NETC", "CC", "ET"), (4, 2, 3, 1)), "brats2024-men-rt": (("GTV",), (1,)),
}


@pytest.mark.parametrize("scheme", sorted(DEFAULTS))
def test_defaults_per_scheme(scheme):
    out = default_outputs(scheme)
    assert (out.kind, out.groups, out.values) == ("regions", *DEFAULTS[scheme])
    assert Outputs.from_dict(out.to_dict()) == out and out.channels == len(DEFAULTS[scheme][0])


@pytest.mark.parametrize("scheme", ["brats2024-gli", "brats2024-met", "brats2024-ped", "brats2024-men-rt",
                                    "brats2021", "brats2023", "msd"])
def test_write_back_recovers_every_label_exactly(scheme):
    """The groups of a label map, written back, give the map again: NETC and SNFH of brats2024-gli come back
    from WT/TC/ET/RC, PED's four labels from their own channels, brats2015 aside (its 3 reads as 1)."""
    values = sorted(LABEL_SCHEMES[scheme].values)
    labels = np.random.default_rng(0).choice(values, size=(9, 8, 7)).astype(np.uint8)
    out = default_outputs(scheme)
    masks, known = out.masks(labels, scheme)
    assert known.all()
    np.testing.assert_array_equal(out.write_back(masks), labels)


def test_wt_tc_et_write_back_is_regions_to_labels_bitwise():
    """Any region masks (nesting broken on purpose) give exactly what ``regions_to_labels`` gave."""
    masks = np.random.default_rng(1).random((3, 10, 9, 8)) > 0.5
    for scheme in ("brats2015", "brats2021", "brats2023", "msd", "brats2024-gli"):
        np.testing.assert_array_equal(region_outputs(scheme, ("WT", "TC", "ET")).write_back(masks),
                                      regions_to_labels(masks, scheme))


def test_unknown_groups_are_marked_per_case():
    """A brats2021 map under WT TC ET RC outputs: RC is unknown (not background), the rest as the scheme says."""
    out = default_outputs("brats2024-gli")
    labels = np.array([[[0, 1, 2, 4]]], np.uint8)
    masks, known = out.masks(labels, "brats2021")
    assert known.tolist() == [True, True, True, False] and not masks[3].any()
    np.testing.assert_array_equal(masks[:3], group_masks(labels, "brats2021", ("WT", "TC", "ET")))


@pytest.mark.parametrize("scheme, groups, words", [
    ("brats2021", ("WT", "TC", "ET", "RC"), "cannot express RC"),
    ("brats2023", ("CC",), "cannot express CC"),
    ("brats2024-gli", ("ET", "TC"), "list TC before ET"),
])
def test_refusals(scheme, groups, words):
    with pytest.raises(BratsSegError, match=words):
        region_outputs(scheme, groups)


def test_label_outputs_write_back_by_argmax_and_old_checkpoints():
    out = label_outputs("brats2024-ped")
    assert out.values == (0, 1, 2, 3, 4) and out.groups[0] == "background"
    np.testing.assert_array_equal(out.write_back(np.array([0, 4, 2])), [0, 4, 2])
    assert outputs_of({"label_scheme": "brats2023", "regions": ["WT", "TC", "ET"]}) == default_outputs("brats2023")
    assert outputs_of({"outputs": out.to_dict()}) == out
    with pytest.raises(BratsSegError, match="outside scheme"):
        Outputs("brats2021", "regions", ("WT",), (3,))
