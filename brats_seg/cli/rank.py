"""``brats-seg rank RUN1 RUN2 ...``: BraTS rank-then-aggregate over evaluation folders."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="evaluation folders written by `brats-seg evaluate`")
    parser.add_argument("--lesionwise", action="store_true",
                        help="rank on lesion-wise Dice and HD95 (BraTS 2023+; needs `evaluate --lesionwise`)")
    parser.add_argument("--out", type=Path, help="folder to write ranking.csv into")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.ranking import (
        LEGACY_RANK_METRICS,
        LESIONWISE_RANK_METRICS,
        load_runs,
        rank_runs,
        ranking_table,
        write_ranking_csv,
    )

    metrics = LESIONWISE_RANK_METRICS if args.lesionwise else LEGACY_RANK_METRICS
    ranking = rank_runs(load_runs(args.runs), metrics)
    print(ranking_table(ranking))
    if args.out is not None:
        print(write_ranking_csv(args.out / "ranking.csv", ranking))
    return 0
