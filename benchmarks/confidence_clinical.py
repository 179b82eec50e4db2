"""The confidence flag and the intensity check on the real clinical scan TCGA-FG-6692, with the rule network
of tests/prepare/rulenet.py (no trained model needed) given the training range of the 22 shared cases.

Prints the confidence scores, the verdict and the far-outside list that ``brats-seg segment`` records, and
leaves ``OUT/TCGA-FG-6692/qc.png`` (about 75 s on 2 cores, mostly preparation)::

    python benchmarks/confidence_clinical.py [--out /tmp/confidence_clinical] [--tta 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
sys.path.insert(0, str(ROOT / "tests" / "prepare"))

from rulenet import CHANNELS, RuleNet  # noqa: E402

from brats_seg.config import PreprocessConfig  # noqa: E402
from brats_seg.data.reading.intensity import intensity_stats, training_range  # noqa: E402
from brats_seg.data.reading.layouts import discover_cases  # noqa: E402
from brats_seg.data.reading.volumes import load_case  # noqa: E402
from brats_seg.inference.predictor import Member, Predictor  # noqa: E402
from brats_seg.prepare import scan_sources, segment_case  # noqa: E402


def shared_range() -> dict:
    stats = []
    for site in ("brats2018", "brats2021", "brats2023", "brats-gli", "ssa"):
        for case in discover_cases(DATA / site):
            vol = load_case(case, with_label=False)
            stats.append(intensity_stats(vol.image, vol.channels))
    return training_range(stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/confidence_clinical")
    parser.add_argument("--tta", type=int, default=2)
    args = parser.parse_args()
    member = Member(RuleNet().eval(), CHANNELS, PreprocessConfig(spacing=(2.0,) * 3), (64, 64, 64),
                    label_scheme="brats2021", name="rulenet", intensity_range=shared_range())
    predictor = Predictor.from_members([member], device="cpu", tta=args.tta)
    source = scan_sources(DATA / "clinical" / "TCGA-FG-6692", {}, None)[0]
    seg = segment_case(source.read(), predictor, args.out, progress=False)
    print(json.dumps({"confidence": seg.record["confidence"],
                      "far_outside": seg.record["prediction"]["intensity"]["far_outside"],
                      "qc": str(seg.prepared.folder / "qc.png")}, indent=1))


if __name__ == "__main__":
    main()
