"""Speed of `brats-seg synth` and `brats-seg preprocess`, each beside a peer, in one process.

    .venv/bin/python benchmarks/bench_synth.py [--cases 5] [--data ../shared/data]

1. synth: template load once, then per 240x240x155 case (1 mm) and per 120x120x78 case (2 mm):
   generation and NIfTI writing, on ONE thread (wall and CPU seconds; CPU is the honest
   number on a shared machine). No peer generates BraTS-like cases, so the figure is set
   against the issue's budget of about 2 s per 240x240x155 case.
2. preprocess (crop to the union of nonzero voxels + z-score inside the brain) on each real
   case: ours (``preprocess_volumes``) vs MONAI ``CropForeground`` + ``NormalizeIntensity
   (nonzero=True, channel_wise=True)``, same loaded arrays, with the ratio and the largest
   difference of the results (MONAI takes each channel's own nonzero mask, we the union).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def bench_synth(n_cases: int) -> None:
    from brats_seg.data.synth import load_anatomy, synthesize_case, write_case

    _, w, c = timed(load_anatomy, 1.0)
    print(f"template load + tissue maps (once per process): {w:.2f} s wall, {c:.2f} s CPU")
    for spacing in (1.0, 2.0):
        load_anatomy(spacing)
        gen, wr = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(n_cases):
                case, w, c = timed(synthesize_case, seed, spacing)
                gen.append((w, c))
                _, w, c = timed(write_case, Path(tmp), f"BraTS2021_{seed:05d}", case, "brats2021")
                wr.append((w, c))
        shape = "x".join(map(str, case.images["t1n"].shape))
        g, r = np.mean(gen, axis=0), np.mean(wr, axis=0)
        print(f"synth {shape} ({spacing:g} mm), mean of {n_cases}: generate {g[0]:.2f} s wall / {g[1]:.2f} s CPU;"
              f" write 5 .nii.gz {r[0]:.2f} s wall / {r[1]:.2f} s CPU")


def bench_preprocess(data: Path) -> None:
    import torch
    from monai.transforms import CropForeground, NormalizeIntensity

    from brats_seg.config import PreprocessConfig
    from brats_seg.data.cases import discover_cases, load_case
    from brats_seg.data.preprocess import preprocess_volumes

    crop = CropForeground(select_fn=lambda x: x != 0, margin=0, allow_smaller=True)
    norm = NormalizeIntensity(nonzero=True, channel_wise=True)
    cases = discover_cases(data / "brats2018") + discover_cases(data / "brats-gli")
    ours_t, peer_t = [], []
    for case in cases:
        vol, lw, _ = timed(load_case, case)
        pre, w1, _ = timed(preprocess_volumes, vol, PreprocessConfig())
        peer, w2, _ = timed(lambda v: norm(crop(torch.from_numpy(v.image))), vol)
        peer = np.asarray(peer)
        same_shape = peer.shape == pre.image.shape
        sl = tuple(slice(lo, hi) for lo, hi in pre.properties["bbox"])
        both = np.all(vol.image[(slice(None), *sl)] != 0, axis=0)  # where the two masks agree
        diff = float(np.abs(peer - pre.image)[:, both].max()) if same_shape else float("nan")
        ours_t.append(w1)
        peer_t.append(w2)
        print(f"preprocess {case.case_id} {'x'.join(map(str, vol.image.shape[1:]))} -> "
              f"{'x'.join(map(str, pre.image.shape[1:]))}: load {lw:.2f} s, ours {w1:.2f} s, MONAI {w2:.2f} s "
              f"(MONAI/ours {w2 / w1:.2f}x), same crop {same_shape}, max |diff| where all channels > 0: {diff:.2f}"
              " (statistics over each channel's nonzero voxels vs the union, as nnU-Net)")
    print(f"preprocess mean: ours {np.mean(ours_t):.2f} s/case, MONAI {np.mean(peer_t):.2f} s/case,"
          f" ratio MONAI/ours {np.mean(peer_t) / np.mean(ours_t):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "BRATS_SEG_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; torch threads 1")
    bench_synth(args.cases)
    if (args.data / "brats2018").is_dir():
        bench_preprocess(args.data)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
