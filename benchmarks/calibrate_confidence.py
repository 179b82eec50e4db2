"""Calibrate the confidence flag's thresholds (brats_seg.inference.confidence.THRESHOLDS) on labelled cases.

Prints, per case, the plausibility scores of the expert labels (tumour outside the brain mask, FLAIR-dark
tumour, tumour away from its main mass), and with ``--model`` those of a model's predictions with
``--tta`` mirrorings (adding the mirror/member disagreement) and the prediction's whole-tumour Dice; then
the largest value of each score and the thresholds in force. A plausibility threshold should sit above
what expert labels and a model that segments well reach on these cases, with a margin
(docs/guides/new-site.md gives the numbers of the 22 shared cases).

With ``--model``, the ``disagreement`` threshold is chosen by leave-one-case-out cross-validation
(:func:`brats_seg.inference.confidence.cross_validated_threshold`): a prediction is *wrong* when its
whole-tumour Dice is below ``--bad-dice`` (0.5); on each fold's other cases the threshold maximising
Youden's J (flagged share of the wrong predictions minus flagged share of the right ones; ties: the
highest) is chosen at a midpoint between neighbouring scores, and the held-out case is flagged or not
with it. Printed: each fold's threshold, the held-out sensitivity/specificity, and the rule applied
to every case (the value to set). ``--save rows.json`` keeps the per-case rows, ``--rows rows.json``
reuses them (no prediction).

Usage::

    python benchmarks/calibrate_confidence.py [--data ../shared/data/brats2018 ../shared/data/brats2021
        ../shared/data/brats2023 ../shared/data/brats-gli ../shared/data/ssa] [--model best.pt --tta 8]
        [--save rows.json | --rows rows.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brats_seg.data.reading.intensity import brain_mask
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.inference.confidence import THRESHOLDS, cross_validated_threshold, plausibility

SHARED = ("brats2018", "brats2021", "brats2023", "brats-gli", "ssa")


def cross_validate(rows: list[dict], bad_dice: float) -> dict:
    """:func:`cross_validated_threshold` of the rows' ``disagreement`` for ``dice_wt < bad_dice``."""
    rows = [r for r in rows if r.get("disagreement") is not None]
    cv = cross_validated_threshold([r["disagreement"] for r in rows], [r["dice_wt"] < bad_dice for r in rows])
    for r, f in zip(rows, cv["folds"]):
        f["case"] = r["case"]
    return {"cases": len(rows), "wrong": sum(r["dice_wt"] < bad_dice for r in rows), "bad_dice": bad_dice, **cv}


def score_cases(data: list[str], model: list[str] | None, tta: int) -> tuple[list[dict], dict[str, float]]:
    """Per-case rows (expert and model scores, the model's WT Dice) and the largest value of each score."""
    predictor = None
    if model:
        from brats_seg.evaluation.metrics import evaluate_case
        from brats_seg.inference.predictor import Predictor

        predictor = Predictor(model, tta=tta, device="cpu")
    worst: dict[str, float] = {}
    rows = []
    for root in data:
        for case in discover_cases(root):
            vol = load_case(case)
            flair = vol.image[list(vol.channels).index("t2f")]
            found = {"experts": plausibility(vol.label, brain_mask(vol.image), flair)}
            if predictor is not None:
                pred = predictor.predict(vol)
                found["model"] = pred.info["confidence"]["scores"]
                scheme = pred.info["label_scheme"]
                wt = evaluate_case(pred.labels, vol.label, vol.reference.spacing, pred_scheme=scheme,
                                   ref_scheme=vol.label_scheme or scheme, groups=("WT",))["WT"]["dice"]
                rows.append({"case": vol.case_id, "dice_wt": round(float(wt), 4), **found["model"]})
            for who, scores in found.items():
                print(vol.case_id, who, " ".join(f"{k} {v:.4f}" for k, v in scores.items() if v is not None),
                      f"WT Dice {rows[-1]['dice_wt']:.3f}" if who == "model" else "", flush=True)
                for k, v in scores.items():
                    if v is not None:
                        worst[f"{who} {k}"] = max(worst.get(f"{who} {k}", 0.0), float(v))
    return rows, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[f"../shared/data/{s}" for s in SHARED])
    parser.add_argument("--model", nargs="+", help="checkpoint(s) whose predictions are scored too")
    parser.add_argument("--tta", type=int, default=8)
    parser.add_argument("--bad-dice", type=float, default=0.5, help="WT Dice below which a prediction is wrong")
    parser.add_argument("--save", help="write the per-case model rows to this JSON file")
    parser.add_argument("--rows", help="per-case model rows saved by --save (no prediction)")
    args = parser.parse_args()
    if args.rows:
        rows = json.loads(Path(args.rows).read_text())
    else:
        rows, worst = score_cases(args.data, args.model, args.tta)
        print("largest:", ", ".join(f"{k} {v:.4f}" for k, v in sorted(worst.items())))
        if args.save:
            Path(args.save).write_text(json.dumps(rows, indent=1))
    print("thresholds:", ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items()))
    if rows:
        cv = cross_validate(rows, args.bad_dice)
        for f in cv["folds"]:
            print(f"  held out {f['case']}: threshold {f['threshold']}, wrong {f['wrong']}, flagged {f['flagged']}")
        print(json.dumps({k: v for k, v in cv.items() if k != "folds"}))


if __name__ == "__main__":
    main()
