"""``brats-seg search CACHE --out RUN``: differentiable V-NAS architecture search (writes RUN/genotype.json).

Then train the searched network with ``brats-seg train ... --model vnas`` and the genotype
(``build_model("vnas", genotype=load_genotype("RUN/genotype.json"))`` in Python).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="preprocess cache folder (brats-seg preprocess DATA --out CACHE)")
    parser.add_argument("--out", required=True, help="run folder: search_state.pt, arch_log.csv, arch_weights.png,"
                        " genotype.json")
    parser.add_argument("--epochs", type=int, default=10, help="search epochs (default 10)")
    parser.add_argument("--steps", type=int, default=50, help="weight+architecture steps per epoch (default 50)")
    parser.add_argument("--patch", type=int, nargs="+", default=[64], metavar="P",
                        help="patch side, or three sides (default 64)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--preset", default="tiny", choices=("tiny", "base"),
                        help="width/depth of the searched network (default tiny); train vnas with the same preset")
    parser.add_argument("--lr", type=float, default=0.01, help="weight learning rate (SGD, default 0.01)")
    parser.add_argument("--arch-lr", type=float, default=3e-3, help="architecture learning rate (Adam, default 3e-3)")
    parser.add_argument("--warmup", type=int, default=0, help="epochs of weight-only steps first (default 0)")
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="continue RUN/search_state.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..training.search import SearchConfig, search

    if len(args.patch) not in (1, 3):
        raise ConfigError(f"--patch takes one side or three, got {args.patch}")
    patch = list(args.patch) * 3 if len(args.patch) == 1 else list(args.patch)
    cfg = SearchConfig(epochs=args.epochs, steps_per_epoch=args.steps, patch_size=patch, batch_size=args.batch_size,
                       preset=args.preset, lr=args.lr, arch_lr=args.arch_lr, warmup_epochs=args.warmup,
                       num_workers=args.workers, device=args.device, seed=args.seed,
                       threads=args.threads)
    genotype = search(args.data, args.out, cfg, resume=args.resume, progress=not args.no_progress)
    print(f"genotype: {' '.join(genotype['cells'])}")
    print(f"wrote {args.out}/genotype.json, arch_log.csv, arch_weights.png (resume state: search_state.pt)")
    return 0
