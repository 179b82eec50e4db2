"""``brats-seg evaluate PRED REF --out DIR``: score predictions against references.

Writes metrics.csv (one row per case and scored group), summary.json, summary.md
and boxplots.png into DIR. References and predictions are read through the checks of
``brats-seg check`` (complete file, 3-D, integer values; a prediction's shape and affine
equal to its reference's). Exit status 1 when some prediction could not be scored (each
listed at the end), 2 for bad input (one case and it failed; a reference dataset whose
label scheme stays ambiguous).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .arguments import add_layout_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..conventions import LABEL_SCHEMES
    from ..evaluation.lesionwise import CHALLENGES, LESION_HD95_MODE
    from ..evaluation.metrics import DEFAULT_HD95_MODE, HD95_MODES

    schemes = ", ".join(LABEL_SCHEMES)
    parser.add_argument("pred", type=Path, help="folder of predicted label maps (<case_id>.nii.gz, "
                        "<case_id>_seg.nii.gz, or one subfolder per case)")
    parser.add_argument("ref", type=Path, help="reference dataset folder (any layout) or folder of label maps")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the report")
    parser.add_argument("--label-scheme", help=f"label scheme of references and predictions ({schemes}; default:"
                        " from the layout, case ids and the values of the whole dataset)")
    add_layout_argument(parser)
    parser.add_argument("--ref-scheme", help="label scheme of the references (overrides --label-scheme)")
    parser.add_argument("--pred-scheme", help="label scheme of the predictions (overrides --label-scheme; default:"
                        " the reference's when the values fit, else detected)")
    parser.add_argument("--lesionwise", action="store_true", help="add BraTS 2023+ lesion-wise Dice and HD95")
    parser.add_argument("--challenge", help=f"sub-challenge of the lesion-wise parameters ({', '.join(CHALLENGES)};"
                        " default: from each case id, BraTS-MET-* -> met; gli when it names none)")
    parser.add_argument("--hd95-mode", default=DEFAULT_HD95_MODE, choices=HD95_MODES,
                        help="pooled: 95th percentile of both directions' voxel-surface distances together (official"
                        " BraTS package, default); max: larger of the two directed 95th percentiles (MONAI); surfel:"
                        " area-weighted surface elements, larger directed percentile (DeepMind, BraTS 2023+ code)")
    parser.add_argument("--lesion-hd95-mode", default=LESION_HD95_MODE, choices=HD95_MODES,
                        help="per-lesion HD95 (default surfel, as the challenge's lesion-wise code)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="parallel processes (default: up to 4)")
    parser.add_argument("--json", action="store_true", help="print summary.json to stdout instead of a table")
    parser.add_argument("--no-plots", action="store_true", help="skip boxplots.png")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from ..evaluation.report import evaluate_folder
    from .outcome import report_failures

    result = evaluate_folder(
        args.pred, args.ref, args.out, pred_scheme=args.pred_scheme or args.label_scheme,
        ref_scheme=args.ref_scheme or args.label_scheme, hd95_mode=args.hd95_mode, lesionwise=args.lesionwise,
        challenge=args.challenge, lesion_hd95_mode=args.lesion_hd95_mode, workers=args.workers,
        progress=not args.json, plots=not args.no_plots, layout=args.layout,
    )
    s = result.summary
    failed = {f["case_id"]: f["error"] for f in s["failed"]}
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        metrics = ["dice", "hd95"] + (["lesion_dice", "lesion_hd95"] if args.lesionwise else [])
        print(f"{s['n_scored']} of {s['n_cases']} cases scored (reference label scheme"
              f" {', '.join(s['label_schemes']) or '-'}) -> {args.out}")
        print(f"{'group':8}" + "".join(f"{m + ' mean':>18}{'median':>10}" for m in metrics))
        for group, stats in s["metrics"].items():
            cells = ""
            for m in metrics:
                st = stats[m]
                cells += "".join(f"{'' if v is None else f'{v:.4f}':>{w}}" for v, w in ((st["mean"], 18),
                                                                                      (st["median"], 10)))
            print(f"{group:8}{cells}")
    for w in s["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if s["missing"]:
        print(f"{len(s['missing'])} missing prediction(s) scored as empty: {', '.join(s['missing'])}",
              file=sys.stderr)
    return report_failures(failed)
