"""``brats-seg synth OUT --cases N --layout L --seed S``: synthetic BraTS-like cases (MNI anatomy, tumors)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output dataset folder")
    parser.add_argument("--cases", type=int, default=10, help="number of cases (default 10)")
    parser.add_argument("--layout", choices=("brats2021", "brats2023", "msd"),
                        help="file layout and label scheme (default brats2021: labels 1, 2, 4)")
    parser.add_argument("--label-scheme", choices=("brats2024-gli", "brats2024-ped"),
                        help="BraTS 2024 task: brats2024-gli (post-treatment, a resection cavity labelled 4) or"
                             " brats2024-ped (a cyst labelled 3); implies --layout brats2023")
    parser.add_argument("--seed", type=int, default=0, help="case i uses seed + i (default 0)")
    parser.add_argument("--spacing", type=float, default=1.0, metavar="MM",
                        help="voxel size in mm: 1 gives the BraTS 240x240x155 grid, 2 gives 120x120x78 (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..data.synth import synthesize_dataset

    layout = args.layout or ("brats2023" if args.label_scheme else "brats2021")
    summary = synthesize_dataset(args.out, args.cases, layout=layout, seed=args.seed, spacing=args.spacing,
                                 workers=args.workers, progress=not args.quiet, label_scheme=args.label_scheme)
    sec = summary["seconds_per_case"]
    shape = "x".join(map(str, summary["shape"]))
    print(f"{args.out}: {len(summary['cases'])} {layout} cases ({shape} at {args.spacing:g} mm, labels "
          f"{summary['label_scheme']}); {sec['generate']:.2f} s/case to generate, {sec['write']:.2f} s/case to write")
    return 0
