"""Issue 20: experiment tables carry every scored group (brats2024-gli's RC, MEN-RT's GTV), WT/TC/ET first."""

from __future__ import annotations

import pytest

from brats_seg.experiments.scoring import CaseScore, mean_metrics, per_case_rows, scored_groups


def _score(case_id, groups, dice):
    return CaseScore(case_id, {g: {"dice": dice, "hd95": 2.0} for g in groups}, 1.0)


def test_tables_follow_the_scored_groups():
    gli = [_score("a", ("WT", "TC", "ET", "NETC", "SNFH", "RC"), 0.5), _score("b", ("WT", "TC", "ET", "RC"), 1.0)]
    assert scored_groups(gli) == ["WT", "TC", "ET", "NETC", "SNFH", "RC"]
    means = mean_metrics(gli)
    assert means["dice_RC"] == 0.75 and means["dice_NETC"] == 0.5 and means["dice_mean"] == 0.75
    assert per_case_rows("x", gli)[1]["dice_NETC"] is None and per_case_rows("x", gli)[1]["dice_RC"] == 1.0
    men = [_score("c", ("GTV",), 0.8)]
    assert scored_groups(men) == ["GTV"] and mean_metrics(men)["dice_mean"] == pytest.approx(0.8)
    old = [_score("d", ("WT", "TC", "ET"), 0.9)]
    assert list(mean_metrics(old)) == ["dice_WT", "hd95_WT", "dice_TC", "hd95_TC", "dice_ET", "hd95_ET", "dice_mean",
                                       "seconds_per_case"]
