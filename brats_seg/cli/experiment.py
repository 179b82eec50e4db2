"""``brats-seg experiment NAME [--data DIR ...] --out DIR [--preset smoke|cpu|full]``: the review's comparisons.

``architectures`` (every registered model, one budget), ``transfer`` (scratch vs
self-supervised pretraining vs synthetic-to-real vs inflated 2-D weights, encoder
frozen or not, several training-set sizes), ``ensembles`` (members, EMMA-style
combinations, error correlation vs gain), ``modalities`` (the 15 sequence subsets:
modality dropout vs zero-filling). Each writes ``results.csv``, ``results.md``,
``results.png`` and ``summary.json`` into ``--out``.

``transfer --source-data A B --target-data C`` compares ways of bringing a model to a new site
instead (source only, target only, pooled, fine-tuned three ways, TENT, synthetic source;
leave-one-case-out on the target cases: :mod:`brats_seg.experiments.site`).
"""

from __future__ import annotations

import argparse

from .arguments import add_data_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..experiments.catalog import EXPERIMENTS

    parser.add_argument("name", choices=list(EXPERIMENTS), help="which comparison to run")
    parser.add_argument("--data", nargs="+", metavar="DIR",
                        help="labeled dataset folder(s), any layout, pooled; the cpu presets train on the first"
                             " and hold out the others; default: synthesize the preset's dataset into OUT/data")
    parser.add_argument("--out", required=True, help="output folder (results.csv, results.md, results.png)")
    add_data_arguments(parser)
    parser.add_argument("--preset", default="smoke",
                        help="smoke: tiny models, seconds on a CPU; cpu: real data on one CPU core (architectures,"
                             " transfer, ensembles: about 20-30 minutes; modalities: about 50); full: BraTS-size"
                             " models for a GPU")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--weights-2d", metavar="FILE",
                        help="transfer: torchvision-format 2-D ResNet state-dict file to inflate (default: a"
                             " randomly initialized one, labeled as such in the table)")
    parser.add_argument("--source-data", nargs="+", metavar="DIR",
                        help="transfer: the source population's labelled cases (e.g. ../shared/data/brats2018"
                             " ../shared/data/brats2021); with --target-data, the new-site comparison")
    parser.add_argument("--target-data", nargs="+", metavar="DIR",
                        help="transfer: the new site's labelled cases, scored leave-one-case-out (e.g."
                             " ../shared/data/ssa)")
    parser.add_argument("--genotype", metavar="FILE",
                        help="architectures: genotype.json of a V-NAS search (brats-seg search) for the vnas model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..experiments.catalog import run_experiment
    from ..models.nas.genotype import load_genotype, model_arguments

    options: dict = {}
    if args.name == "transfer":
        options.update(weights_2d=args.weights_2d, source_data=args.source_data, target_data=args.target_data)
    elif args.source_data or args.target_data:
        raise ConfigError("--source-data and --target-data apply to the transfer experiment only")
    if args.genotype:
        if args.name != "architectures":
            raise ConfigError("--genotype applies to the architectures experiment only")
        options["model_kwargs"] = {"vnas": model_arguments(load_genotype(args.genotype))}
    summary = run_experiment(args.name, args.data, args.out, args.preset, device=args.device,
                             progress=not args.no_progress, layout=args.layout, label_scheme=args.label_scheme,
                             **options)
    print(f"{args.name}: {len(summary['rows'])} rows in {summary['paths']['md']}"
          f" ({summary['timings_s']['total']:.0f} s)")
    return 0
