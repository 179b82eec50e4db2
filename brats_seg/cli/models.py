"""``brats-seg models``: the registered architectures with parameters and GFLOPs per patch.

``brats-seg models import SRC --out model.pt``: one of our checkpoints from a model trained elsewhere
(an nnU-Net v2 trained model folder), recording where it came from (``provenance.imported``:
framework, configuration, folds, each source file's sha256), so it is used without the source.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("import",),
                        help="import SRC: write one of our checkpoints from an nnU-Net v2 trained model folder")
    parser.add_argument("source", nargs="?", type=Path, metavar="SRC",
                        help="<Trainer>__<Plans>__<configuration>/ folder of nnU-Net v2")
    parser.add_argument("--out", type=Path, help="checkpoint to write (import)")
    add_import_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--preset", default="base", choices=("tiny", "base"), help="size preset (default base)")
    parser.add_argument("--patch", type=int, default=128, help="cube side of the patch for GFLOPs (default 128)")


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """--folds, --checkpoint-name, --channels: how a model folder trained elsewhere is read."""
    parser.add_argument("--folds", nargs="+", metavar="K", help="nnU-Net folds to average (default: every fold_*)")
    parser.add_argument("--checkpoint-name", metavar="FILE",
                        help="nnU-Net checkpoint file in each fold (default checkpoint_final.pth, else"
                             " checkpoint_best.pth)")
    parser.add_argument("--channels", nargs="+", metavar="NAME",
                        help="our sequence names (t1n t1c t2w t2f) of the source's input channels, in its order,"
                             " where its own names are not ones brats_seg knows")


def load_models(args: argparse.Namespace) -> list:
    """``--model`` entries for :class:`~brats_seg.inference.predictor.Predictor`: checkpoint paths as they are,
    model folders trained elsewhere read with --folds/--checkpoint-name/--channels."""
    from ..inference.members import member_from_checkpoint

    return [member_from_checkpoint(p, getattr(args, "window", None), folds=args.folds, channels=args.channels,
                                   checkpoint=args.checkpoint_name) if Path(p).is_dir() else str(p)
            for p in args.model]


def run_import(args: argparse.Namespace) -> int:
    from ..checkpoint import save_checkpoint
    from ..errors import ConfigError
    from ..importers import import_source

    if args.source is None or args.out is None:
        raise ConfigError("models import needs SRC and --out model.pt")
    ckpt = import_source(args.source, folds=args.folds, checkpoint=args.checkpoint_name, channels=args.channels)
    save_checkpoint(ckpt, args.out)
    record = ckpt["provenance"]["imported"]
    print(f"{args.out}: {record['framework']} {record['version']} {record.get('configuration', '')}"
          f" folds {', '.join(record.get('folds', []))}; channels {', '.join(ckpt['channels'])};"
          f" outputs {ckpt['outputs']['kind']} -> {ckpt['label_scheme']} labels")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        return run_import(args)
    from ..errors import ConfigError
    from ..models.profile import profile_model
    from ..models.registry import list_models

    if args.patch < 1:
        raise ConfigError(f"--patch must be positive, got {args.patch}")
    rows = []
    for name in list_models():
        patch = (args.patch,) * 3
        rows.append(profile_model(name, preset=args.preset, patch=patch))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<18} {'params':>8} {'GFLOPs':>8}  {'DS':<3} description (paper)")
    print(f"{'':<18} {'(M)':>8} {f'4x{args.patch}^3':>8}")
    for r in rows:
        ds = "yes" if r["deep_supervision"] else "no"
        print(f"{r['name']:<18} {r['parameters'] / 1e6:>8.2f} {r['gflops']:>8.1f}  {ds:<3} {r['description']}"
              f" ({r['paper']})")
    print(f"preset {args.preset}; GFLOPs = 1e9 multiply-adds x 2, one forward pass, counted on the meta device;"
          " DS = deep-supervision heads")
    return 0
