"""``brats-seg check DATA [--layout L] [--label-scheme S] [--allow-missing [MODS]] [--json]``: is every case usable?

Prints one row per case (layout, label scheme, modalities, shape, every problem)
and a summary; ``--json`` prints a list of ``{"case", "ok", "layout",
"label_scheme", "modalities", "shape", "errors", "missing", "findings"}`` on stdout
instead. ``--allow-missing`` (all four, or a comma list such as ``t1n,t2w``) reports an
absent sequence as a finding, not an error: for models trained with modality dropout.
Exit 0 only when every case is valid, 1 when some case is not, 2 for bad input.
Every other command that reads cases applies the same checks (:mod:`brats_seg.data.checks`).
"""

from __future__ import annotations

import argparse
import json
import sys

from .arguments import LAYOUT_NAMES, add_data_arguments  # noqa: F401 (LAYOUT_NAMES: imported by others)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="dataset folder, one case folder, or a CSV manifest")
    add_data_arguments(parser)
    parser.add_argument("--allow-missing", nargs="?", const="t1n,t1c,t2w,t2f", metavar="MODS",
                        help="a missing sequence is a finding, not an error (all four, or a comma list like t1n,t2w):"
                             " for models trained with --modality-dropout")
    parser.add_argument("--json", action="store_true", help="print a JSON list on stdout instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def format_table(results) -> str:
    """The human report: one row per case, further errors on their own lines, then a summary."""
    head = ("case", "status", "layout", "scheme", "modalities", "shape", "errors")
    rows = [(r.case, "ok" if r.ok else "FAIL", r.layout, r.label_scheme or "-", ",".join(r.modalities) or "-",
             "x".join(map(str, r.shape)) if r.shape else "-", r.errors[0] if r.errors else "")
            for r in results]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    for row, r in zip([head, *rows], [None, *results]):
        notes = [f"note: {f}" for f in r.findings] if r is not None else []
        first = row[-1] or (notes.pop(0) if notes else "")
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + first)
        for error in (r.errors[1:] if r is not None else []) + notes:
            lines.append(" " * (sum(widths) + 2 * len(widths)) + error)
    bad = sum(not r.ok for r in results)
    lines.append(f"{len(results)} case{'s' if len(results) != 1 else ''}: {len(results) - bad} valid, {bad} invalid")
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    from ..data.checks import check_dataset
    from ..data.layouts import get_layout
    from ..data.subsets import parse_subset

    if args.layout is not None:
        get_layout(args.layout)
    allow = () if args.allow_missing is None else parse_subset(args.allow_missing)
    results = check_dataset(args.data, layout=args.layout, scheme=args.label_scheme,
                            progress=not args.no_progress, allow_missing=allow)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_table(results))
    sys.stdout.flush()
    return 0 if all(r.ok for r in results) else 1
