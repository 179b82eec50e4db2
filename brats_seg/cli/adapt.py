"""``brats-seg adapt CKPT UNLABELLED_DATA --out NEW.pt [--method tent]``: adapt a trained model to a new
site's unlabelled scans without labels (:mod:`brats_seg.training.adapt`: TENT, entropy minimization on
the normalization layers' affine parameters) and write a new checkpoint recording what was done
(``provenance["adaptation"]``). Exit 0 written, 2 bad input (unreadable checkpoint or case)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the trained model (a brats_seg checkpoint)")
    parser.add_argument("data", help="the new site's scans (any layout; labels, if present, are never read)")
    parser.add_argument("--out", required=True, help="the adapted checkpoint to write (.pt)")
    parser.add_argument("--method", default="tent", choices=("tent",),
                        help="tent: entropy minimization on the normalization layers' scale and shift (Wang et al."
                             " 2021)")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps (default 50)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=2, help="patches per step (default 2)")
    parser.add_argument("--patch", type=int, nargs=3, metavar=("H", "W", "D"),
                        help="patch size (default: the checkpoint's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import BratsSegError
    from ..training.adapt import AdaptConfig, adapt

    out = Path(args.out)
    if out.resolve() == Path(args.checkpoint).resolve():
        raise BratsSegError(f"--out {out} is the input checkpoint; choose another file")
    cfg = AdaptConfig(method=args.method, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                      patch=tuple(args.patch) if args.patch else None, seed=args.seed, device=args.device)
    record = adapt(args.checkpoint, args.data, out, cfg)
    print(f"adapted {args.checkpoint} to {len(record['cases'])} case(s) of {args.data} ({record['method']},"
          f" {record['steps']} steps, {record['parameters']} parameters): mean entropy"
          f" {record['entropy_first_step']:.4f} -> {record['entropy_last_step']:.4f}; wrote {out}", file=sys.stderr)
    return 0
