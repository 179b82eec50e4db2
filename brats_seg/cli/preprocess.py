"""``brats-seg preprocess DATA OUT``: crop, normalize (optionally N4 and resample) into a .npy cache.

Every case is read through the checks of ``brats-seg check`` (:func:`brats_seg.data.reading.checks.read_case`).
Exit status: 0 all cases cached, 1 some cases failed (each listed at the end, nothing of them written),
2 bad input (one case given and it failed, no cases, a bad option).
"""

from __future__ import annotations

import argparse

from .arguments import add_data_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="dataset folder (or CSV manifest)")
    parser.add_argument("out", help="cache folder: <case>_image.npy, <case>_label.npy, <case>.json, dataset.json")
    add_data_arguments(parser)
    parser.add_argument("--normalization", choices=("zscore", "percentile", "none"),
                        help="per-channel normalization inside the brain (default zscore)")
    parser.add_argument("--clip-percentiles", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="percentiles for --normalization percentile (default 0.5 99.5)")
    parser.add_argument("--n4", action="store_true", default=None, help="N4 bias-field correction (slow)")
    parser.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="resample to this voxel spacing in mm (default: keep)")
    parser.add_argument("--no-crop", dest="crop", action="store_false", default=None,
                        help="keep the full grid instead of cropping to the brain")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..config import PreprocessConfig, replace
    from ..data.preprocessing.preprocess import preprocess_dataset
    from .outcome import report_failures

    cfg = replace(PreprocessConfig(), crop=args.crop, normalization=args.normalization, n4=args.n4,
                  clip_percentiles=tuple(args.clip_percentiles) if args.clip_percentiles else None,
                  spacing=tuple(args.spacing) if args.spacing else None)
    report = preprocess_dataset(args.data, args.out, cfg, layout=args.layout, label_scheme=args.label_scheme,
                                workers=args.workers,
                                progress=not args.quiet)
    print(report.summary())
    return report_failures(dict(sorted(report.failed.items())))
