"""``brats-seg train DATA --model NAME --out RUN``: region-based training into one run folder.

Settings come from ``--recipe NAME`` (a named, documented set: ``--list-recipes``; see
:mod:`brats_seg.training.recipes`), then ``--config cfg.yaml`` (a
:class:`~brats_seg.training.train_config.TrainConfig` as YAML), then flags: each overrides
the one before. ``--resume`` continues the run in ``--out`` from its
``config.yaml`` (flags still override, e.g. ``--epochs`` to extend it). ``--time-budget
MINUTES`` trains for that long instead of a number of epochs (validation and checkpoint
writes included; the learning rate decays over the time; see
:mod:`brats_seg.training.schedule`). Under ``torchrun --nproc_per_node N`` the same
command trains with DDP.

A raw dataset is preprocessed first through the checks of ``brats-seg check``: a case that
fails one is skipped (named on stderr at the start and again at the end) and the run trains
on the others, then exits 1; when no case goes through, one line and exit 2.
"""

from __future__ import annotations

import argparse

from .arguments import add_data_arguments, patch_size


def _model_arg(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="?", help="raw dataset folder or preprocessing cache")
    parser.add_argument("--out", help="run folder (config.yaml, checkpoints/, log.csv, curves.png)")
    parser.add_argument("--recipe", help="named settings, e.g. nnunet (nnU-Net v2's trainer); --config and flags"
                        " override them")
    parser.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    parser.add_argument("--config", help="YAML file of TrainConfig settings; overrides --recipe, flags override it")
    parser.add_argument("--model", help="registered model name (brats-seg models lists them)")
    parser.add_argument("--preset", help="model size: tiny or base")
    parser.add_argument("--model-arg", action="append", type=_model_arg, metavar="KEY=VALUE",
                        help="override a model argument (YAML value), e.g. --model-arg features=[16,32,64]; repeatable")
    parser.add_argument("--genotype", help="genotype.json of a V-NAS search (brats-seg search; formats 1 and 2);"
                        " implies --model vnas and sets the residual blocks per level it was searched with")
    parser.add_argument("--cache", help="where raw data is preprocessed to (default RUN/cache)")
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=int, help="epochs of --steps-per-epoch steps (default 100: sized for a GPU,"
                        " as are the nnunet base model and 128^3 patches; on a CPU use --recipe cpu)")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="train for this many minutes instead of --epochs (validation and checkpoints included;"
                             " the lr schedule runs on elapsed time; --warmup is then a share of the budget, 0..1)")
    parser.add_argument("--steps-per-epoch", type=int, help="optimizer steps per epoch (default 250)")
    parser.add_argument("--patch", type=patch_size, help="patch size: 128 or 128,128,96")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--loss", help="dice_bce (sigmoid regions, default) or dice_ce (softmax over labels)")
    parser.add_argument("--no-deep-supervision", dest="deep_supervision", action="store_const", const=False)
    parser.add_argument("--optimizer", help="adamw (default) or sgd")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--schedule", help="poly (default) or cosine")
    parser.add_argument("--warmup", type=float, help="warm-up epochs (with --time-budget: share of the budget)")
    parser.add_argument("--grad-clip", type=float)
    parser.add_argument("--amp", help="auto (bf16 on CUDA, fp32 on CPUs: oneDNN's bf16 3-D weight"
                        " gradients are wrong for thin inputs), bf16, fp16 or none")
    parser.add_argument("--fold", type=int)
    parser.add_argument("--folds", type=int, help="k of k-fold cross-validation (1: no validation)")
    parser.add_argument("--val-every", type=int, help="validate every N epochs")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    parser.add_argument("--workers", type=int, help="data loader worker processes")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--no-augment", dest="augment", action="store_const", const=False)
    parser.add_argument("--fg-fraction", type=float, help="share of patches centred on tumor (default 0.34)")
    parser.add_argument("--init", help="weight initialisation: default (PyTorch's) or he (nnU-Net's)")
    parser.add_argument("--init-from", help="weights file: our checkpoint, a state dict, or 2-D torchvision weights;"
                        " or a model trained elsewhere (an nnU-Net v2 folder, a MONAI bundle, a `models import`"
                        " checkpoint): its own network fine-tuned with its channels, preprocessing, patch and outputs")
    parser.add_argument("--freeze-encoder-epochs", type=int)
    parser.add_argument("--encoder-lr-scale", type=float)
    _add_outputs_and_subsets(parser)
    parser.add_argument("--resume", action="store_const", const=True, help="continue the run in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False)



def _add_outputs_and_subsets(parser: argparse.ArgumentParser) -> None:
    """What the network outputs and which sequence subsets it is trained for."""
    from ..conventions import LABEL_SCHEMES

    parser.add_argument("--output-scheme", dest="output_scheme",
                        help=f"label scheme predictions are written in ({', '.join(LABEL_SCHEMES)}; default: the"
                        " training cases' scheme, required when they mix schemes); its default outputs apply")
    parser.add_argument("--outputs", nargs="+", metavar="GROUP",
                        help="output groups, outer first (sigmoid regions), e.g. WT TC ET RC, or 'labels' (softmax"
                             " over the scheme's labels, with --loss dice_ce); default: the scheme's (WT TC ET;"
                             " brats2024-gli/met add RC; brats2024-ped ED NETC CC ET; men-rt GTV)")
    parser.add_argument("--modality-dropout", type=float, metavar="P",
                        help="train for missing sequences: each sample keeps, with probability P, only a random"
                             " subset of its channels (the others set to 0 after normalization, as prediction fills"
                             " a missing sequence); the checkpoint records the subsets trained (default 0: off)")
    parser.add_argument("--subsets", nargs="+", metavar="SUBSET",
                        help="subsets dropout may keep, e.g. t1c+t2f t2f t1n+t1c+t2w (default: all 15)")

FLAGS = ("data", "out", "model", "preset", "cache", "layout", "label_scheme",
         "epochs", "steps_per_epoch", "time_budget", "patch", "batch_size",
         "loss", "deep_supervision", "optimizer", "lr", "weight_decay", "schedule", "warmup", "grad_clip", "amp",
         "fold", "folds", "val_every", "seed", "device", "workers", "threads", "augment", "init_from",
         "freeze_encoder_epochs", "encoder_lr_scale", "output_scheme", "resume", "progress", "fg_fraction", "init",
         "modality_dropout")


def config_from_args(args: argparse.Namespace):
    """Recipe, then ``--config``, then flags (or the run's own ``config.yaml`` when resuming, then flags)."""
    from pathlib import Path

    from ..config import read_yaml, replace
    from ..errors import ConfigError
    from ..training.train_config import config_from_dict, load_run_config

    if args.resume and not args.config and args.out and (Path(args.out) / "config.yaml").is_file():
        if args.recipe:
            raise ConfigError(f"{args.out}: --recipe sets up a new run; a resumed run keeps its config.yaml")
        cfg = load_run_config(args.out)
    else:
        settings = read_yaml(args.config) if args.config else {}
        if args.recipe:
            settings["recipe"] = args.recipe
        cfg = config_from_dict(settings, source=args.config or "--recipe")
    cfg = replace(cfg, **{k: getattr(args, k) for k in FLAGS})
    if args.subsets:
        cfg = replace(cfg, subsets=tuple(args.subsets))
    if args.outputs:
        cfg = replace(cfg, outputs=tuple(g.upper() for g in args.outputs))
    if args.model_arg:
        cfg = replace(cfg, model_kwargs={**cfg.model_kwargs, **dict(args.model_arg)})
    if args.genotype:
        from ..models.nas.genotype import load_genotype, model_arguments

        cfg = replace(cfg, model=args.model or "vnas",
                      model_kwargs={**cfg.model_kwargs, **model_arguments(load_genotype(args.genotype))})
    return cfg


def print_recipes() -> None:
    from ..training.recipes import list_recipes

    for r in list_recipes():
        print(f"{r['name']}\n  {r['description']}\n  source: {r['reference']}")


def run(args: argparse.Namespace) -> int:
    from ..devices import dist_env
    from ..training.trainer import train
    from .outcome import report_failures

    if args.list_recipes:
        print_recipes()
        return 0

    summary = train(config_from_args(args))
    if dist_env().rank != 0:
        return 0
    best = summary["history"][summary["best_epoch"] - 1] if summary["best_epoch"] else {}
    dice = " ".join(f"{k[9:]} {v:.3f}" for k, v in best.items() if k.startswith("val_dice_") and k != "val_dice_mean")
    print(f"trained {summary['epochs']} epochs in {summary['elapsed']:.0f} s; best epoch {summary['best_epoch']}"
          + (f" (validation Dice {dice})" if dice else "") + f"; run folder {summary['run']}")
    return report_failures(summary["skipped"], "skipped")
