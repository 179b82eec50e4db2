#!/usr/bin/env python
"""Write deterministic k-fold cross-validation splits of a dataset as JSON.

    python data_scripts/make_splits.py data/BraTS2021 --folds 5 --seed 0 --out splits.json

The splits are the ones ``brats-seg train --fold k --folds K --seed S`` uses (same
function), so a split file made here tells in advance which cases each fold
validates on. Only labelled cases are split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brats_seg.data.reading.layouts import discover_cases
from brats_seg.errors import BratsSegError
from brats_seg.training.splits import make_splits, save_splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="dataset folder in any supported layout")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", help="force the dataset layout")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    try:
        ids = [c.case_id for c in discover_cases(args.data, layout=args.layout) if c.label is not None]
        splits = make_splits(ids, args.folds, args.seed)
    except BratsSegError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_splits(args.out, splits, args.seed)
    for k, s in enumerate(splits):
        print(f"fold {k}: {len(s['train'])} train, {len(s['val'])} val")
    return 0


if __name__ == "__main__":
    sys.exit(main())
