#!/usr/bin/env python
"""Bootstrap intervals of an experiment's per-arm mean Dice, and of each arm's paired difference from a baseline.

    python data_scripts/experiment_intervals.py exp/architectures/per_case.csv --baseline unet3d

Reads the ``per_case.csv`` that ``brats-seg experiment`` writes; one line per arm
(:func:`brats_seg.experiments.heldout_scores.arm_intervals`, 95 % percentile bootstrap over the cases).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from brats_seg.experiments.heldout_scores import arm_intervals


def fmt(ci) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("per_case", type=Path, help="per_case.csv of an experiment")
    parser.add_argument("--baseline", required=True, help="arm the others are compared with")
    args = parser.parse_args(argv)
    if not args.per_case.is_file():
        print(f"{args.per_case}: file not found", file=sys.stderr)
        return 2
    with args.per_case.open() as f:
        rows = list(csv.DictReader(f))
    for r in arm_intervals(rows, args.baseline):
        line = f"{r['arm']}: mean Dice {r['dice_mean']:.3f} {fmt(r['ci'])} over {r['n']} cases"
        if "diff" in r:
            line += (f"; minus {args.baseline}: {r['diff']:+.3f} {fmt(r['diff_ci'])},"
                     f" better on {r['better']}/{r['n_paired']} cases")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
