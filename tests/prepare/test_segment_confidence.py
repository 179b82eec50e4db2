"""``segment`` says how sure it is: the rule network on the scanner-like copy of a case it segments well
(WT Dice 0.95) is scored and not flagged; segment.json records it; qc.png gains the implausible-tumour row;
the implausible map marks tumour outside the brain mask (1) and FLAIR-dark tumour (3)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np

from brats_seg.prepare.segment import _implausible


def test_segment_records_confidence_and_draws_it(segmented):
    record = json.loads((segmented.prepared.folder / "segmentation" / "segment.json").read_text())
    confidence = record["confidence"]
    assert not confidence["flagged"] and confidence["scores"]["outside_brain"] is not None
    assert record["prediction"]["intensity"]["stats"]["t2f"]["p50"] > 0
    rows = len([m for m in ("t1n", "t2w", "t2f") if m in segmented.prepared.images]) + 2 + 2  # + labels, implausible
    height = mpimg.imread(segmented.prepared.folder / "qc.png").shape[0]
    assert height == rows * 3 * 80  # figsize 3 inches per row at 80 dpi


def test_implausible_map_known_values():
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:5] = True
    flair = np.zeros((6, 6, 6))
    flair[mask] = np.arange(1, 65)  # brain median 32.5
    flair[2, 2, 2], flair[3, 3, 3] = 1.0, 100.0  # darker and brighter than it
    labels = np.zeros((6, 6, 6), np.uint8)
    labels[2, 2, 2] = labels[3, 3, 3] = labels[0, 0, 0] = 2
    out = _implausible(SimpleNamespace(images={"t2f": flair}, mask=mask), labels)
    assert out[0, 0, 0] == 1 and out[2, 2, 2] == 3 and out[3, 3, 3] == 0 and out.sum() == 4
