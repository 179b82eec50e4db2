"""The sequence recogniser on real series descriptions (issue 24): the CSV (>= 150 real strings, each
with its source) and the precision/recall that docs/guides/dicom.md states, recomputed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_recognition import LABELS, read_rows, scores  # noqa: E402


def test_the_descriptions_are_real_labelled_and_sourced():
    rows = read_rows()
    assert len(rows) >= 150 and len({r["description"].lower() for r in rows}) == len(rows)
    assert {r["label"] for r in rows} == set(LABELS)
    assert {r["collection"] for r in rows} == {"TCGA-GBM", "TCGA-LGG"} and {r["set"] for r in rows} == {
        "tuning", "held-out"}
    header = (ROOT / "tests" / "data" / "series_descriptions.csv").read_text().split("description,label")[0]
    assert "https://github.com/julclu/tcia_analysis" in header


@pytest.mark.parametrize("subset", ["held-out", "tuning"])
def test_precision_and_recall_as_the_guide_states(subset):
    s = scores([r for r in read_rows() if r["set"] == subset])
    guide = (ROOT / "docs" / "guides" / "dicom.md").read_text()
    table = guide.split(f"<!-- recognition {subset} -->")[1].split("<!-- end -->")[0]
    for label in LABELS:
        row = re.search(rf"\| {label} \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", table)
        assert row, label
        assert int(row[1]) == s[label]["n"]
        assert float(row[2]) == round(s[label]["precision"], 2) and float(row[3]) == round(s[label]["recall"], 2)
    assert f"accuracy {s['accuracy']:.2f}" in table


@pytest.mark.parametrize("description, expected", [
    ("AX_T1_FLAIR_PRE", "t1n"), ("AX T1 POST GD FLAIR", "t1c"), ("AXIAL_T1_PRE_GD", "t1n"), ("sag_t1_c", "t1c"),
    ("BRAINCONTRASTT1AXIAL", "t1c"), ("GRE_T2", None), ("AXIAL_T2PD", None), ("3D_T1_MAPPING", None),
])
def test_rules_the_guide_describes(description, expected):
    from brats_seg.prepare.sequences import sequence_from_description

    assert sequence_from_description({"series_description": description}) == expected
