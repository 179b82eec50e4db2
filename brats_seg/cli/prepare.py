"""``brats-seg prepare``: scans as the scanner gave them -> a BraTS-form case in the MNI frame.

    brats-seg prepare clinical/TCGA-FG-6692 --out prepared/            # files named t1, t1c, t2, flair
    brats-seg prepare dicom_study/ --out prepared/                      # DICOM series, recognised
    brats-seg prepare --t1c t1c_dicom/ --t2f flair.nii.gz --sequences t1c t2f --out prepared/
    brats-seg prepare cases.csv --out prepared/                         # one case per row

Exit status: 0 every case prepared and passed QC, 1 some case failed (bad input in a
batch, or a registration below the QC threshold: listed at the end), 2 bad input (one case).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..conventions import MODALITIES

SEQUENCE_FLAGS = MODALITIES  # one flag per sequence: --t1n --t1c --t2w --t2f


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs and preparation options (shared with ``brats-seg segment``)."""
    parser.add_argument("input", nargs="?", type=Path,
                        help="one case folder (volume files named by sequence: t1, t1c/t1ce, t2, flair, ...; or"
                             " DICOM series, recognised from their descriptions) or a CSV manifest (case_id, t1n,"
                             " t1c, t2w, t2f; paths to files or DICOM series folders)")
    files = parser.add_argument_group("one case given sequence by sequence")
    for m in SEQUENCE_FLAGS:
        files.add_argument(f"--{m}", type=Path, metavar="FILE_OR_DIR",
                           help=f"{m}: a volume file or DICOM series folder")
    files.add_argument("--case-id", help="case id (default: the folder's name)")
    parser.add_argument("--pick", nargs="+", action="extend", default=[], metavar="SEQ=SERIES_NUMBER",
                        help="DICOM study folder: which series is which sequence where the descriptions do not"
                             " decide (two T1c, pre/post T1 without a contrast tag), e.g. --pick t1c=7 t1n=4")
    parser.add_argument("--out", required=True, type=Path, help="output folder (one subfolder per case)")
    parser.add_argument("--brain-extraction", default="auto", metavar="NAME",
                        help="auto (default: none if the T1c is already skull-stripped, else deepbet), deepbet,"
                             " robex, none")
    parser.add_argument("--interpolation", default="bspline", choices=("bspline", "linear"),
                        help="for the one resampling of each image into the atlas (default bspline: cubic)")
    parser.add_argument("--min-similarity", type=float, nargs=2, metavar=("RIGID", "ATLAS"),
                        help="QC thresholds on the similarity peak's sharpness (default 0.35 0.08; see the manual,"
                             " scanner scans)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--sequences", nargs="+", default=list(SEQUENCE_FLAGS), metavar="SEQ",
                        help="sequences the case must have (default all four; T1c always)")


def sources_and_config(args: argparse.Namespace, sequences=None):
    """The cases named on the command line and the PrepareConfig the flags ask for."""
    from ..conventions import canonical_modality
    from ..prepare import PrepareConfig, scan_sources

    paths = {m: getattr(args, m) for m in SEQUENCE_FLAGS if getattr(args, m) is not None}
    sources = scan_sources(args.input, paths, args.case_id, picks(args.pick))
    wanted = sequences if sequences is not None else tuple(canonical_modality(s) for s in args.sequences)
    config = PrepareConfig(sequences=tuple(wanted), brain_extraction=args.brain_extraction,
                           interpolation=args.interpolation,
                           min_similarity=tuple(args.min_similarity) if args.min_similarity else None)
    return sources, config


def picks(items: list[str]) -> dict[str, str]:
    """``["t1c=7"]`` -> ``{"t1c": "7"}`` (sequence -> DICOM series number)."""
    from ..conventions import canonical_modality
    from ..errors import BratsSegError

    out = {}
    for item in items:
        name, _, number = item.partition("=")
        if not number.strip().isdigit():
            raise BratsSegError(f"--pick {item}: expected SEQ=SERIES_NUMBER, e.g. t1c=7")
        out[canonical_modality(name)] = number.strip()
    return out


def report(done: dict, failed: dict, what: str) -> int:
    """Print the summary; the exit status (1 if any case failed)."""
    print(f"{len(done)} case(s) {what}, {len(failed)} failed", file=sys.stderr)
    for msg in failed.values():
        print(f"  failed: {msg}", file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from ..prepare import prepare_case, run_cases

    sources, config = sources_and_config(args)
    result = run_cases(sources, lambda scans: prepare_case(scans, args.out, config, progress=not args.no_progress),
                       required=config.needed)
    for case_id, prepared in result.results.items():
        print(f"{case_id}: {prepared.folder}", file=sys.stderr)
    return report(result.results, result.failed, f"prepared in {args.out}")
