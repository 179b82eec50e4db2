"""``brats-seg check DATA [--layout L] [--label-scheme S] [--allow-missing [MODS]] [--json]``: is every case usable?

Prints one row per case (layout, label scheme, modalities, shape, every problem)
and a summary; ``--json`` prints a list of ``{"case", "ok", "layout",
"label_scheme", "modalities", "shape", "errors", "missing", "findings", "intensity"}`` on stdout
instead (``intensity``: per sequence, raw p1/p50/p99, mean, std and z-scored p1/p99 inside the brain,
:mod:`brats_seg.data.reading.intensity`). ``--intensity`` adds those statistics to the table; ``--model CKPT``
compares each case with the training cases' range the checkpoint records (``far_outside`` in the
JSON, a note in the table: the rule ``segment`` and ``predict`` warn by).
``--allow-missing`` (all four, or a comma list such as ``t1n,t2w``) reports an
absent sequence as a finding, not an error: for models trained with modality dropout.
Exit 0 only when every case is valid, 1 when some case is not, 2 for bad input.
Every other command that reads cases applies the same checks (:mod:`brats_seg.data.reading.checks`).
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
    parser.add_argument("--intensity", action="store_true",
                        help="add each sequence's brain intensity statistics (p1/p50/p99, mean, std) to the table")
    parser.add_argument("--model", metavar="CKPT",
                        help="compare each case's intensities with the training cases' range this checkpoint records")
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


def intensity_table(results) -> str:
    """Per case and sequence: raw p1/p50/p99, mean, std inside the brain; far-outside notes."""
    lines = ["intensity inside the brain (raw p1 / p50 / p99, mean, std; z-scored p1 / p99):"]
    for r in results:
        for m, s in r.intensity.items():
            if s:
                lines.append(f"  {r.case}  {m}  {s['p1']:.4g} / {s['p50']:.4g} / {s['p99']:.4g}, {s['mean']:.4g},"
                             f" {s['std']:.4g}; {s['z_p1']:.2f} / {s['z_p99']:.2f}")
        for note in getattr(r, "far_outside", []):
            lines.append(f"  {r.case}  far outside the training cases': {note}")
    return "\n".join(lines)


def _compare(results, checkpoint: str) -> None:
    from ..checkpoint import intensity_range_of, load_checkpoint
    from ..data.reading.intensity import far_outside
    from ..errors import CheckpointError

    ranges = intensity_range_of(load_checkpoint(checkpoint))
    if ranges is None:
        raise CheckpointError(f"{checkpoint}: records no training intensity range (an older checkpoint)")
    for r in results:
        r.far_outside = far_outside(r.intensity, ranges)


def run(args: argparse.Namespace) -> int:
    from ..data.reading.checks import check_dataset
    from ..data.reading.layouts import get_layout
    from ..data.subsets import parse_subset

    if args.layout is not None:
        get_layout(args.layout)
    allow = () if args.allow_missing is None else parse_subset(args.allow_missing)
    results = check_dataset(args.data, layout=args.layout, scheme=args.label_scheme,
                            progress=not args.no_progress, allow_missing=allow)
    if args.model:
        _compare(results, args.model)
    if args.json:
        extra = (lambda r: {"far_outside": r.far_outside}) if args.model else (lambda r: {})
        print(json.dumps([{**r.to_dict(), **extra(r)} for r in results], indent=2))
    else:
        print(format_table(results))
        if args.intensity or args.model:
            print(intensity_table(results))
    sys.stdout.flush()
    return 0 if all(r.ok for r in results) else 1
