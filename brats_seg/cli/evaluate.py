"""``brats-seg evaluate PRED REF --out DIR``: score predictions against references.

Writes metrics.csv (one row per case and region), summary.json, summary.md and
boxplots.png into DIR. Exit status 1 when some prediction could not be scored.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", type=Path, help="folder of predicted label maps (<case_id>.nii.gz, "
                        "<case_id>_seg.nii.gz, or one subfolder per case)")
    parser.add_argument("ref", type=Path, help="reference dataset folder (any layout) or folder of label maps")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the report")
    parser.add_argument("--lesionwise", action="store_true", help="add BraTS 2023+ lesion-wise Dice and HD95")
    parser.add_argument("--challenge", default="gli", help="sub-challenge of the lesion-wise parameters: "
                        "gli, ssa, ped, men, met (default gli)")
    parser.add_argument("--pred-scheme", help="label scheme of the predictions (brats2021, brats2023, msd, "
                        "brats2015; default: the reference's when the values fit, else detected)")
    parser.add_argument("--ref-scheme", help="label scheme of the references (default: from the layout/values)")
    parser.add_argument("--hd95-mode", default="pooled", choices=("pooled", "max"),
                        help="pooled: 95th percentile of both directions' distances together (official BraTS "
                        "package, default); max: larger of the two directed 95th percentiles (MONAI)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="parallel processes (default: up to 4)")
    parser.add_argument("--json", action="store_true", help="print summary.json to stdout instead of a table")
    parser.add_argument("--no-plots", action="store_true", help="skip boxplots.png")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from ..conventions import REGIONS
    from ..evaluation.report import evaluate_folder

    result = evaluate_folder(
        args.pred, args.ref, args.out, pred_scheme=args.pred_scheme, ref_scheme=args.ref_scheme,
        hd95_mode=args.hd95_mode, lesionwise=args.lesionwise, challenge=args.challenge, workers=args.workers,
        progress=not args.json, plots=not args.no_plots,
    )
    s = result.summary
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        metrics = ["dice", "hd95"] + (["lesion_dice", "lesion_hd95"] if args.lesionwise else [])
        print(f"{s['n_scored']} of {s['n_cases']} cases scored -> {args.out}")
        print(f"{'region':8}" + "".join(f"{m + ' mean':>18}{'median':>10}" for m in metrics))
        for r in REGIONS:
            cells = ""
            for m in metrics:
                st = s["metrics"][r][m]
                cells += "".join(f"{'' if v is None else f'{v:.4f}':>{w}}" for v, w in ((st["mean"], 18),
                                                                                      (st["median"], 10)))
            print(f"{r:8}{cells}")
    for w in s["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if s["missing"]:
        print(f"{len(s['missing'])} missing prediction(s) scored as empty: {', '.join(s['missing'])}",
              file=sys.stderr)
    for f in s["failed"]:
        print(f"failed: {f['error']}", file=sys.stderr)
    return 1 if result.failures else 0
