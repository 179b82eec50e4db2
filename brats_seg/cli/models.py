"""``brats-seg models``: the registered architectures with parameters and GFLOPs per patch."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--preset", default="base", choices=("tiny", "base"), help="size preset (default base)")
    parser.add_argument("--patch", type=int, default=128, help="cube side of the patch for GFLOPs (default 128)")


def run(args: argparse.Namespace) -> int:
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
