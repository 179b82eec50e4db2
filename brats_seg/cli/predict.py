"""``brats-seg predict``: segment raw scans with one or more checkpoints.

    brats-seg predict data/BraTS2021 --model fold0.pt fold1.pt --out preds/ --tta 8
    brats-seg predict --t1n a.nii.gz --t1c b.nii.gz --t2w c.nii.gz --t2f d.nii.gz --model m.pt --out preds/
    brats-seg predict --t1c b.nii.gz --t2f d.nii.gz --model dropout.pt --out preds/   # a subset of the sequences
    torchrun --nproc_per_node 4 -m brats_seg.cli predict cohort/ --model m.pt --out preds/

Every case is read through the checks of ``brats-seg check`` (:func:`brats_seg.data.reading.checks.read_case`).
Exit status: 0 all cases written, 1 some cases failed (listed at the end, nothing of them
written), 2 bad input (one case given and it failed, unreadable checkpoint, no cases, output
over an input); with ``--exit-unsure``, 4 when every case was written but some were flagged as
unsure (flagged cases are said in one line each and recorded in the sidecar's ``confidence``
either way; docs/guides/new-site.md). A case whose intensities are far outside the training
cases' range gets a one-line warning (the sidecar's ``intensity``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..conventions import MODALITIES

MODALITY_FLAGS = MODALITIES  # one flag per sequence: --t1n --t1c --t2w --t2f


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", type=Path,
                        help="a case folder, a dataset folder (any layout) or a CSV manifest;"
                             " or give one file per modality with --t1n/--t1c/--t2w/--t2f (any subset the model was"
                             " trained for)")
    parser.add_argument("--model", nargs="+", required=True, type=Path, metavar="CKPT",
                        help="checkpoint(s) or nnU-Net v2 trained model folder(s); several form an ensemble"
                             " (probabilities averaged)")
    from .models import add_import_arguments

    add_import_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    files = parser.add_argument_group("one case given as files")
    for m in MODALITY_FLAGS:
        files.add_argument(f"--{m}", type=Path, metavar="FILE", help=f"{m} volume")
    files.add_argument("--case-id", help="case id for --t1n.. files (default: their common name prefix)")
    parser.add_argument("--layout", help="dataset layout (default: detected)")
    from ..conventions import LABEL_SCHEMES

    parser.add_argument("--label-scheme", help="scheme of the written labels (default: the input's, else the"
                                               f" checkpoint's): {', '.join(LABEL_SCHEMES)}")
    from ..config import DEFAULT_OVERLAP

    parser.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP,
                        help=f"sliding-window overlap (default {DEFAULT_OVERLAP:g})")
    parser.add_argument("--tta", type=int, default=0, metavar="N",
                        help="test-time mirroring: number of flip combinations 0..8 (0 off, 8 all)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA if available)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default 4)")
    parser.add_argument("--window", type=int, nargs=3, metavar=("H", "W", "D"),
                        help="sliding-window size (default: the checkpoint's patch size)")
    parser.add_argument("--weights", type=float, nargs="+", help="ensemble weights, one per checkpoint")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write {case_id}_probabilities.nii.gz (H, W, D, G: one per output group of the"
                        " model, WT, TC, ET by default)")
    parser.add_argument("--uncertainty", nargs="?", const="variance", choices=("variance", "entropy"),
                        help="also write {case_id}_uncertainty.nii.gz: variance across members x mirrors"
                             " (default) or entropy of the averaged probability")
    parser.add_argument("--name-format", default="{case_id}.nii.gz",
                        help="label file name (default {case_id}.nii.gz, as BraTS submissions expect)")
    _add_postprocessing(parser)
    _add_runtime(parser)
    parser.add_argument("--zero-fill", action="store_true",
                        help="run a model on a sequence subset it was not trained for, the missing ones zero-filled"
                             " (the HeMIS/RFNet baseline; quality drops, often sharply) instead of refusing the case")
    parser.add_argument("--exit-unsure", action="store_true",
                        help="exit 4 when every case was written but some prediction is flagged as unsure"
                             " (disagreement or implausible anatomy; the sidecar's confidence)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_postprocessing(parser: argparse.ArgumentParser) -> None:
    post = parser.add_argument_group("postprocessing (default: the rule the checkpoint records, e.g. --recipe cpu's,"
                                      " else none; a flag changes that one setting)")
    post.add_argument("--threshold", type=float, help="region probability threshold (default 0.5)")
    post.add_argument("--min-component", type=int, metavar="VOXELS",
                      help="remove whole-tumor components smaller than this (0: off)")
    post.add_argument("--largest-wt", type=float, nargs="?", const=1.0, metavar="FRACTION",
                      help="keep only the largest whole-tumor component (nnU-Net's rule), or with FRACTION those at"
                           " least that fraction of its size; 0: off, also for a rule the checkpoint records")
    post.add_argument("--et-min-voxels", type=int, metavar="VOXELS",
                      help="relabel enhancing tumor as core when its volume is below this (nnU-Net BraTS"
                           " 2020 rule; 0: off)")


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    """What computes the windows, at which precision, on how many threads."""
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx", "openvino"),
                        help="what computes the windows: torch (default, any device), onnx (ONNX Runtime) or"
                             " openvino (CPU; the fastest there); same windows and blending")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto (default): bf16 on CUDA, fp32 on the CPU; bf16 on a CPU with native bf16"
                             " (torch autocast or OpenVINO) measured 1.4-1.9x the fp32 speed"
                             " (benchmarks/bench_predict.py)")
    parser.add_argument("--threads", type=int, help="CPU threads (torch, ONNX Runtime, OpenVINO)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")


def _cases_from_files(args):
    from ..data.reading.cases import case_from_files
    from ..errors import BratsSegError

    if args.input is not None:
        raise BratsSegError("give either INPUT or --t1n/--t1c/--t2w/--t2f files, not both")
    return [case_from_files({m: getattr(args, m) for m in MODALITY_FLAGS}, args.case_id)]


def find_cases(args):
    """The cases named on the command line (raises BratsSegError if none)."""
    from ..data.reading.layouts import discover_cases
    from ..errors import BratsSegError

    if any(getattr(args, m) is not None for m in MODALITY_FLAGS):
        return _cases_from_files(args)
    if args.input is None:
        raise BratsSegError("no input: give a case or dataset folder, or --t1n/--t1c/--t2w/--t2f files")
    return discover_cases(args.input, layout=args.layout)


def postprocess_changes(args) -> dict:
    """The postprocessing settings given on the command line (the rest come from the checkpoint)."""
    given = {"threshold": args.threshold, "min_component_voxels": args.min_component,
             "wt_component_fraction": args.largest_wt, "et_min_voxels": args.et_min_voxels}
    return {k: v for k, v in given.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    import torch

    from ..devices import dist_env, pick_device
    from ..inference.batch_prediction import (
        OutputOptions,
        join_process_group,
        leave_process_group,
        predict_cases,
        write_summary,
    )
    from ..inference.predictor import Predictor
    from ..inference.predictor_config import PredictorConfig
    from .models import load_models
    from .outcome import refuse_single_case, report_failures

    env = dist_env()
    if args.threads is not None:
        if args.threads < 1:
            from ..errors import BratsSegError

            raise BratsSegError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cases = find_cases(args)
    device = pick_device(args.device, env.local_rank if env.world > 1 else None)  # one GPU per process
    config = PredictorConfig(
        device=device, overlap=args.overlap, tta=args.tta, batch_size=args.batch_size, weights=args.weights,
        backend=args.backend, precision=args.precision, compile=args.compile, postprocess=postprocess_changes(args),
        uncertainty=args.uncertainty, label_scheme=args.label_scheme, window=args.window, zero_fill=args.zero_fill,
    )
    predictor = Predictor(load_models(args), config)
    options = OutputOptions(args.name_format, args.probabilities, uncertainty=args.uncertainty is not None)
    join_process_group(env, device)
    try:
        protected = [args.input] if args.input is not None and args.input.is_dir() else []
        report = predict_cases(predictor, cases, args.out, options, progress=not args.no_progress, env=env,
                               protected=protected, log=sys.stderr if len(cases) > 1 else None)
        if env.world == 1:
            refuse_single_case(report.failed, len(cases))  # one bad case: one line, exit 2, no summary
        report = write_summary(args.out, report, env, predictor.settings())
    finally:
        leave_process_group(env)
    if env.rank != 0:
        return 0
    if env.world > 1:
        refuse_single_case(report.failed, len(cases))  # the gathered report of every process
    for line in report.flagged.values():
        print(f"brats-seg predict: {line}", file=sys.stderr)
    print(f"{len(report.done)} case(s) written to {args.out}, {len(report.failed)} failed"
          f"{f', {len(report.flagged)} flagged as unsure' if report.flagged else ''}", file=sys.stderr)
    from ..inference.confidence import EXIT_FLAGGED

    return report_failures(report.failed) or (EXIT_FLAGGED if report.flagged and args.exit_unsure else 0)
