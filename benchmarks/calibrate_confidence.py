"""Calibrate the confidence flag's thresholds (brats_seg.inference.confidence.THRESHOLDS) on labelled cases.

Prints, per case, the plausibility scores of the expert labels (tumour outside the brain mask, FLAIR-dark
tumour, tumour away from its main mass), and with ``--model`` those of a model's predictions with
``--tta`` mirrorings (adding the mirror/member disagreement); then the largest value of each score and
the thresholds in force. A threshold should sit above what expert labels and a model that segments
well reach on these cases, with a margin (docs/guides/new-site.md gives the numbers of the 22 shared cases).

Usage::

    python benchmarks/calibrate_confidence.py [--data ../shared/data/brats2018 ../shared/data/brats2021
        ../shared/data/brats2023 ../shared/data/brats-gli ../shared/data/ssa] [--model best.pt --tta 8]
"""

from __future__ import annotations

import argparse

from brats_seg.data.cases import load_case
from brats_seg.data.intensity import brain_mask
from brats_seg.data.layouts import discover_cases
from brats_seg.inference.confidence import THRESHOLDS, plausibility

SHARED = ("brats2018", "brats2021", "brats2023", "brats-gli", "ssa")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[f"../shared/data/{s}" for s in SHARED])
    parser.add_argument("--model", nargs="+", help="checkpoint(s) whose predictions are scored too")
    parser.add_argument("--tta", type=int, default=8)
    args = parser.parse_args()
    predictor = None
    if args.model:
        from brats_seg.inference.predictor import Predictor

        predictor = Predictor(args.model, tta=args.tta, device="cpu")
    worst: dict[str, float] = {}
    for root in args.data:
        for case in discover_cases(root):
            vol = load_case(case)
            flair = vol.image[list(vol.channels).index("t2f")]
            rows = {"experts": plausibility(vol.label, brain_mask(vol.image), flair)}
            if predictor is not None:
                rows["model"] = predictor.predict(vol).info["confidence"]["scores"]
            for who, scores in rows.items():
                print(case.case_id, who, " ".join(f"{k} {v:.4f}" for k, v in scores.items() if v is not None))
                for k, v in scores.items():
                    if v is not None:
                        worst[f"{who} {k}"] = max(worst.get(f"{who} {k}", 0.0), float(v))
    print("largest:", ", ".join(f"{k} {v:.4f}" for k, v in sorted(worst.items())))
    print("thresholds:", ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items()))


if __name__ == "__main__":
    main()
