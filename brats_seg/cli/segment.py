"""``brats-seg segment``: prepare raw scans, predict, and write the labels in the patient's space.

    brats-seg segment clinical/TCGA-FG-6692 --model best.pt --out seg/
    brats-seg segment dicom_study/ --model a.pt b.pt --native t2f --probabilities --out seg/

Calls ``brats-seg prepare``'s steps, then :class:`brats_seg.Predictor`, then maps the labels
onto the native T1c (and each ``--native`` sequence): NIfTI with that input's geometry, and
DICOM SEG when the input was a DICOM series. The sequences needed are the model's to decide
(:func:`brats_seg.prepare.required_sequences`): all its channels, or the subset a predictor
that supports missing sequences accepts; a missing one is refused with one line naming it
(exit 2; in a batch the case is listed and the exit status is 1). Otherwise as ``brats-seg prepare``.

Exit status 3: every case segmented, but a DICOM input could not carry a DICOM SEG (e.g. no Frame
of Reference UID): the NIfTI labels stand and one line per such input says why.
A prediction flagged as unsure (:mod:`brats_seg.inference.confidence`) is said in one line and in
``qc.png``'s title instead of "QC PASSED"; with ``--exit-unsure`` the exit status is then 4 (when
nothing failed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .models import add_import_arguments, load_models
from .prepare import add_input_arguments, report, sources_and_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--model", nargs="+", required=True, type=Path, metavar="CKPT",
                        help="checkpoint(s) or nnU-Net v2 trained model folder(s); several form an ensemble")
    add_import_arguments(parser)
    parser.add_argument("--native", nargs="+", default=["t1c"], metavar="SEQ",
                        help="also write the labels on these inputs' grids (default t1c; 'all' for every input)")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write segmentation/probabilities_in_<seq>_space.nii.gz (X, Y, Z, G: one channel"
                             " per output group of the model) on each native grid")
    parser.add_argument("--no-dicom-seg", action="store_true", help="no DICOM SEG even for DICOM inputs")
    parser.add_argument("--tta", type=int, default=0, metavar="N", help="test-time mirroring (0..8, default 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA if available)")
    parser.add_argument("--exit-unsure", action="store_true",
                        help="exit 4 when every case was segmented but some prediction is flagged as unsure")


def run(args: argparse.Namespace) -> int:
    from ..conventions import canonical_modality
    from ..inference.predictor import Predictor
    from ..prepare import required_sequences, run_cases, segment_case

    predictor = Predictor(load_models(args), device=args.device, tta=args.tta)
    sources, config = sources_and_config(args, sequences=())  # the sequences: the predictor's to decide
    everything = "all" in args.native

    def work(scans):
        native = tuple(scans.series) if everything else tuple(canonical_modality(m) for m in args.native)
        return segment_case(scans, predictor, args.out, config, native=native, probabilities=args.probabilities,
                            dicom_seg=not args.no_dicom_seg, progress=not args.no_progress)

    result = run_cases(sources, work, required=lambda scans: required_sequences(predictor, scans))
    from ..inference.confidence import EXIT_FLAGGED, one_line

    flagged = {}
    for case_id, seg in result.results.items():
        print(f"{case_id}: {seg.prepared.folder / 'segmentation'}", file=sys.stderr)
        confidence = seg.record.get("confidence") or {}
        if confidence.get("flagged"):
            flagged[case_id] = one_line(case_id, confidence)
            print(f"brats-seg segment: {flagged[case_id]}", file=sys.stderr)
    status = no_dicom_seg_status(result.results, report(result.results, result.failed, f"segmented in {args.out}"))
    return status or (EXIT_FLAGGED if flagged and args.exit_unsure else 0)


NO_DICOM_SEG = 3
"""Exit status: all cases segmented (NIfTI labels written) but some DICOM SEG could not be written."""


def no_dicom_seg_status(done: dict, status: int) -> int:
    """Print one line per DICOM input left without a SEG; :data:`NO_DICOM_SEG` if any and ``status`` was 0."""
    missing = [reason for seg in done.values() for reason in seg.no_dicom_seg.values()]
    for reason in missing:
        print(f"  no DICOM SEG: {reason}", file=sys.stderr)
    return NO_DICOM_SEG if missing and status == 0 else status

