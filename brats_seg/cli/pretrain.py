"""``brats-seg pretrain DATA --out RUN``: Models Genesis-style self-supervised pretraining (no labels needed).

``DATA`` is a raw dataset folder (any layout, labelled or not) or a preprocessing cache. The result,
``RUN/checkpoints/last.pt``, initializes a segmentation run on data preprocessed the same way:
``brats-seg train DATA --model NAME --init-from RUN/checkpoints/last.pt`` (same model and preset).
Raw cases that fail a check of ``brats-seg check`` are skipped and listed (exit 1), as in ``train``.
"""

from __future__ import annotations

import argparse

from .arguments import add_data_arguments, patch_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="raw dataset folder or preprocessing cache (labels are not used)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="YAML file of PretrainConfig settings; flags override it")
    parser.add_argument("--model", help="registered model name (the one you will fine-tune)")
    parser.add_argument("--preset", help="tiny or base")
    parser.add_argument("--cache", help="where raw data is preprocessed to (default RUN/cache)")
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--patch", type=patch_size, help="patch size: 64 or 64,64,64")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False)


FLAGS = ("data", "out", "model", "preset", "cache", "layout", "label_scheme",
         "epochs", "steps_per_epoch", "patch", "batch_size", "lr", "seed",
         "device", "workers", "threads", "progress")


def run(args: argparse.Namespace) -> int:
    from ..config import load_yaml, replace
    from ..training.pretrain import PretrainConfig, pretrain
    from .outcome import report_failures

    cfg = load_yaml(PretrainConfig, args.config) if args.config else PretrainConfig()
    summary = pretrain(replace(cfg, **{k: getattr(args, k) for k in FLAGS}))
    print(f"pretrained {len(summary['history'])} epochs on {summary['cases']} cases in {summary['seconds']:.0f} s;"
          f" restoration loss {summary['history'][-1]['train_loss']:.4f}; weights {summary['run']}/checkpoints/last.pt")
    return report_failures(summary["skipped"], "skipped")
