"""``brats-seg export CKPT --format torchscript|onnx --out FILE``: export a checkpoint's network.

The export is checked against PyTorch on a random input before the file is kept. It maps
``(B, C, H, W, D)`` images to ``(B, G, H, W, D)`` logits, one channel per output group, and records the
checkpoint's outputs (ONNX: metadata ``brats_seg.outputs``; TorchScript: extra file ``outputs.json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="a brats_seg checkpoint (.pt) or an nnU-Net v2 trained model folder")
    parser.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    parser.add_argument("--out", type=Path, help="output file (default: CKPT with .ts.pt or .onnx)")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("H", "W", "D"),
                        help="input window the export is traced and checked at (default: the patch size)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest accepted difference to PyTorch")


def run(args: argparse.Namespace) -> int:
    from ..inference.export import export_checkpoint, exported_outputs

    out = args.out or args.checkpoint.with_suffix(".onnx" if args.format == "onnx" else ".ts.pt")
    diff = export_checkpoint(args.checkpoint, args.format, out, shape=args.shape, tolerance=args.tolerance)
    outputs = exported_outputs(out)
    print(f"wrote {out} ({args.format}; outputs: {outputs.kind} {' '.join(outputs.groups)}); largest difference"
          f" to PyTorch {diff:.2e}", file=sys.stderr)
    return 0
