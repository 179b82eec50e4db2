"""``brats-seg benchmark EVAL_DIR``: our evaluation summary beside published BraTS results."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("eval_dir", type=Path, help="evaluation folder written by `brats-seg evaluate`")
    parser.add_argument("--edition", help="only published rows whose edition contains this (e.g. 2021, GLI)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.challenge import benchmark_table, load_summary
    from ..files import atomic_path

    table = benchmark_table(load_summary(args.eval_dir), edition=args.edition)
    print(table)
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            tmp.write_text(table)
    return 0
