"""Argument types shared by several subcommands."""

from __future__ import annotations

import argparse


def patch_size(text: str) -> tuple[int, int, int]:
    """``128`` -> (128, 128, 128); ``128,128,96`` or ``128x128x96`` -> (128, 128, 96)."""
    parts = [p for p in text.replace("x", ",").split(",") if p]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"patch must be integers like 128 or 128,128,96, got {text!r}") from None
    if len(sizes) == 1:
        sizes *= 3
    if len(sizes) != 3:
        raise argparse.ArgumentTypeError(f"patch needs 1 or 3 sizes, got {text!r}")
    return tuple(sizes)


LAYOUT_NAMES = ("brats2021", "brats2023", "msd", "nnunet", "csv")  # kept literal: --help imports nothing heavy


def add_layout_argument(parser: argparse.ArgumentParser) -> None:
    """``--layout``: every command that reads a dataset takes it (checked when the cases are found)."""
    parser.add_argument("--layout", help=f"force the dataset layout ({', '.join(LAYOUT_NAMES)}; default: detect)")


def add_label_scheme_argument(parser: argparse.ArgumentParser, what: str = "the labels' scheme") -> None:
    """``--label-scheme``: every command that reads label maps takes it (the answer to an ambiguous set)."""
    from ..conventions import LABEL_SCHEMES  # light: names and label tables only

    parser.add_argument("--label-scheme", help=f"{what} ({', '.join(LABEL_SCHEMES)};"
                        " default: from the layout, the case ids and the label values)")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--layout`` and ``--label-scheme`` of a command that reads a labelled dataset."""
    add_layout_argument(parser)
    add_label_scheme_argument(parser)
