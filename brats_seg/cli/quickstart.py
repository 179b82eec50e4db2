"""``brats-seg quickstart [--data DIR] [--out DIR]``: the whole toolkit once, with a report."""

from __future__ import annotations

import argparse

from .arguments import add_data_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..experiments.quickstart import QuickstartConfig as Q

    parser.add_argument("--data", help="dataset folder (any layout); default: synthesize a small dataset")
    add_data_arguments(parser)
    parser.add_argument("--out", default=Q.out, help=f"run folder (default {Q.out})")
    parser.add_argument("--cases", type=int, default=Q.synth_cases, help="synthetic cases to make without --data")
    parser.add_argument("--spacing", type=float, default=Q.synth_spacing,
                        help=f"voxel spacing (mm) of the synthetic cases (default {Q.synth_spacing:g})")
    parser.add_argument("--heldout", type=float, default=Q.heldout,
                        help=f"fraction of cases held out of training and scored (default {Q.heldout:g})")
    parser.add_argument("--model", default=Q.model, help=f"registered model (default {Q.model})")
    parser.add_argument("--preset", default=Q.preset, help=f"model size preset (default {Q.preset})")
    parser.add_argument("--time-budget", type=float, default=Q.time_budget, metavar="MINUTES",
                        help=f"minutes of training (default {Q.time_budget:g}; the learning rate decays on elapsed"
                             " time, as in `brats-seg train --time-budget`)")
    parser.add_argument("--epochs", type=int,
                        help=f"train this many epochs instead of a time budget (reproducible; e.g. {Q.epochs})")
    parser.add_argument("--steps-per-epoch", type=int, default=Q.steps_per_epoch)
    parser.add_argument("--batch-size", type=int, default=Q.batch_size)
    parser.add_argument("--patch", type=int, nargs=3, default=Q.patch, metavar=("H", "W", "D"))
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--seed", type=int, default=Q.seed)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..experiments.quickstart import QuickstartConfig as Q
    from ..experiments.quickstart import run_quickstart

    cfg = Q(out=args.out, data=args.data, layout=args.layout, label_scheme=args.label_scheme,
            synth_cases=args.cases, synth_spacing=args.spacing, heldout=args.heldout,
            model=args.model, preset=args.preset, time_budget=None if args.epochs else args.time_budget,
            epochs=args.epochs or Q.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
            patch=tuple(args.patch), device=args.device, seed=args.seed)
    summary = run_quickstart(cfg, progress=not args.no_progress)
    n = summary["n_scored"]
    cases = f"{n} case{'s' if n != 1 else ''}"
    if summary["synthetic"]:
        print(f"held-out Dice on {cases}, synthetic (far easier than real scans): " + ", ".join(
            f"{r} {m['dice']['mean']:.3f}" for r, m in summary["metrics"].items() if m["dice"]["mean"] is not None))
    else:
        def interval(ci):
            return f" (95% interval {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""

        print(f"held-out Dice on {cases}, real: " + ", ".join(
            f"{r} {m['dice']['mean']:.3f}{interval(summary['intervals'][r]['dice'])}"
            for r, m in summary["metrics"].items() if m["dice"]["mean"] is not None))
    print(f"report: {args.out}/report.html ({summary['timings_s']['total']:.0f} s)")
    return 1 if summary["prediction_failures"] else 0
