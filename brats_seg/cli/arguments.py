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
