"""Precision and recall of the sequence recogniser (:func:`brats_seg.prepare.sequences.sequence_from_description`)
on real series descriptions (``tests/data/series_descriptions.csv``: TCIA TCGA-GBM/LGG, labelled by hand).

Per sequence: precision = right / recognised as it, recall = right / labelled it; ``other`` = not
one of the four (the recogniser's None). Descriptions it gets wrong are listed.

Usage::

    python benchmarks/bench_recognition.py [--set held-out|tuning|all] [--wrong]

``tuning``: the descriptions the rules were revised on; ``held-out``: labelled before the revised
rules ever saw them (the honest figure).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from brats_seg.prepare.sequences import sequence_from_description

CSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "series_descriptions.csv"
LABELS = ("t1n", "t1c", "t2w", "t2f", "other")


def read_rows(path: Path = CSV) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def scores(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """``{label: {"precision", "recall", "n"}}`` and ``"accuracy"`` over all rows."""
    guessed = [sequence_from_description({"series_description": r["description"]}) or "other" for r in rows]
    out: dict = {}
    for label in LABELS:
        said = sum(g == label for g in guessed)
        truth = sum(r["label"] == label for r in rows)
        right = sum(g == label == r["label"] for g, r in zip(guessed, rows))
        out[label] = {"precision": right / said if said else float("nan"), "recall": right / truth if truth else
                      float("nan"), "n": truth}
    out["accuracy"] = sum(g == r["label"] for g, r in zip(guessed, rows)) / len(rows)
    out["wrong"] = [(r["description"], r["label"], g) for g, r in zip(guessed, rows) if g != r["label"]]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--set", default="held-out", choices=("held-out", "tuning", "all"))
    parser.add_argument("--wrong", action="store_true", help="list the descriptions recognised wrongly")
    args = parser.parse_args(argv)
    s = scores([r for r in read_rows(args.csv) if args.set in ("all", r["set"])])
    print(f"{'sequence':9s} {'n':>4s} {'precision':>9s} {'recall':>7s}")
    for label in LABELS:
        print(f"{label:9s} {s[label]['n']:4d} {s[label]['precision']:9.3f} {s[label]['recall']:7.3f}")
    print(f"accuracy {s['accuracy']:.3f} over {sum(s[k]['n'] for k in LABELS)} descriptions")
    if args.wrong:
        for desc, truth, guess in s["wrong"]:
            print(f"  {desc!r}: labelled {truth}, recognised {guess}")


if __name__ == "__main__":
    main()
