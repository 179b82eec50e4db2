"""``brats-seg search DATA --out RUN``: differentiable V-NAS architecture search (writes RUN/genotype.json).

``DATA`` is what ``brats-seg train`` takes: a raw dataset folder (preprocessed into ``--cache``
or ``RUN/cache`` first) or a preprocessing cache. Then train the searched network with
``brats-seg train DATA --genotype RUN/genotype.json --preset <same preset> --out ...``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .arguments import add_data_arguments

FLAGS = {"epochs": "epochs", "warmup": "warmup_epochs", "steps": "steps_per_epoch", "space": "space",
         "batch_size": "batch_size", "preset": "preset", "lr": "lr", "arch_lr": "arch_lr", "cache": "cache",
         "layout": "layout", "label_scheme": "label_scheme",
         "workers": "num_workers", "device": "device", "seed": "seed", "threads": "threads"}
"""Flag -> :class:`~brats_seg.training.search.SearchConfig` field; a flag not given keeps the field's default."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="raw dataset folder or preprocessing cache (as brats-seg train takes)")
    parser.add_argument("--out", required=True, help="run folder: search_state.pt, arch_log.csv, arch_weights.png,"
                        " genotype.json, splits.json")
    parser.add_argument("--cache", help="where raw data is preprocessed to (default RUN/cache)")
    add_data_arguments(parser)
    parser.add_argument("--space", choices=("layer", "level"),
                        help="layer: a choice per convolution of residual blocks (the paper's, default);"
                             " level: one choice per U-Net level (smaller, not the paper's)")
    parser.add_argument("--epochs", type=int, help="epochs in all, warm-up included (default 10)")
    parser.add_argument("--warmup", type=int, help="first epochs with weight steps only (default 3)")
    parser.add_argument("--steps", type=int, help="weight+architecture steps per epoch (default 50)")
    parser.add_argument("--patch", type=int, nargs="+", default=[64], metavar="P",
                        help="patch side, or three sides (default 64)")
    parser.add_argument("--batch-size", type=int, help="patches per step (default 2)")
    parser.add_argument("--preset", choices=("tiny", "base"),
                        help="width/depth of the searched network (default tiny); train vnas with the same preset")
    parser.add_argument("--lr", type=float, help="weight learning rate (SGD, default 0.01)")
    parser.add_argument("--arch-lr", type=float, help="architecture learning rate (Adam, default 0.003)")
    parser.add_argument("--workers", type=int, help="data loader worker processes (default 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--seed", type=int, help="seed of weights, architecture parameters and patches (default 0)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="continue RUN/search_state.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..models.nas.genotype import describe_genotype
    from ..training.search import SKIPPED_FILE, SearchConfig, search
    from .outcome import report_failures

    if len(args.patch) not in (1, 3):
        raise ConfigError(f"--patch takes one side or three, got {args.patch}")
    patch = list(args.patch) * 3 if len(args.patch) == 1 else list(args.patch)
    given = {field: getattr(args, flag) for flag, field in FLAGS.items() if getattr(args, flag) is not None}
    cfg = SearchConfig(patch_size=patch, **given)
    genotype = search(args.data, args.out, cfg, resume=args.resume, progress=not args.no_progress)
    print(f"genotype: {describe_genotype(genotype)}")
    print(f"wrote {args.out}/genotype.json, arch_log.csv, arch_weights.png (resume state: search_state.pt)")
    skipped = Path(args.out) / SKIPPED_FILE
    return report_failures(json.loads(skipped.read_text()) if skipped.is_file() else {}, "skipped")
