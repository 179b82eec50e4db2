"""Issue 20: experiment tables carry every scored group (brats2024-gli's RC, MEN-RT's GTV), WT/TC/ET first."""

from __future__ import annotations

import pytest

from brats_seg.experiments.heldout_scores import CaseScore, mean_metrics, per_case_rows, scored_groups


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


def test_runner_tables_list_the_data_groups():
    """The research runners' tables (architectures, modalities, site ...) take their score columns from the
    rows: brats2024-gli adds NETC, SNFH and RC; MEN-RT has GTV only; WT/TC/ET data keep their columns."""
    from brats_seg.data.subsets import all_subsets, subset_name
    from brats_seg.experiments import architectures, modalities
    from brats_seg.experiments.heldout_scores import (
        METRIC_COLUMNS,
        arm_intervals,
        case_columns,
        row_groups,
        table_columns,
    )

    gli = [_score("a", ("WT", "TC", "ET", "NETC", "SNFH", "RC"), 0.5), _score("b", ("WT", "TC", "ET", "RC"), 1.0)]
    old = [_score("d", ("WT", "TC", "ET"), 0.9)]
    assert table_columns(architectures.COLUMNS, [{"model": "m", **mean_metrics(old)}]) == architectures.COLUMNS
    cols = table_columns(architectures.COLUMNS, [{"model": "m", **mean_metrics(gli)}])
    scores = ("dice_WT", "dice_TC", "dice_ET", "dice_NETC", "dice_SNFH", "dice_RC", "dice_mean",
              "hd95_WT", "hd95_TC", "hd95_ET", "hd95_NETC", "hd95_SNFH", "hd95_RC")
    assert cols == (*architectures.COLUMNS[:3], *scores, *architectures.COLUMNS[3 + len(METRIC_COLUMNS):])
    assert row_groups(per_case_rows("x", old)) == ["WT", "TC", "ET"] and case_columns() == tuple(
        f"{m}_{g}" for g in ("WT", "TC", "ET") for m in ("dice", "hd95"))
    men = per_case_rows("base", [_score("c", ("GTV",), 0.8)]) + per_case_rows("arm", [_score("c", ("GTV",), 0.6)])
    assert table_columns(METRIC_COLUMNS, men) == ("dice_GTV", "dice_mean", "hd95_GTV")
    assert arm_intervals(men, "base")[1]["diff"] == pytest.approx(-0.2)
    rows = [{"arm": arm, "subset": s, "case_id": "a", "dice_WT": 0.5, "hd95_WT": 1.0, "dice_TC": 0.5, "hd95_TC": 1.0,
             "dice_ET": 0.5, "hd95_ET": 1.0, "dice_RC": d, "hd95_RC": 2.0}
            for arm in modalities.ARMS for s in map(subset_name, all_subsets()) for d in (0.25,)]
    table = modalities.subset_table(rows)
    assert sorted(table[0]) == sorted(modalities.columns_of(["WT", "TC", "ET", "RC"]))
    assert table[-1]["dropout_dice_RC"] == 0.25 and table[-1]["zerofill_dice_mean"] == 0.5
    assert modalities.columns_of() == modalities.COLUMNS
