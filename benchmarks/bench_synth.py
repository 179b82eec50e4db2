"""Speed of `brats-seg synth` and `brats-seg preprocess`, each beside a peer, in one process.

    .venv/bin/python benchmarks/bench_synth.py [--cases 5] [--data ../shared/data] [--calibration]
        [--transfer 24]

1. synth: template load once, then per 240x240x155 case (1 mm) and per 120x120x78 case (2 mm):
   generation and NIfTI writing, on ONE thread (wall and CPU seconds; CPU is the honest
   number on a shared machine). No peer generates BraTS-like cases, so the figure is set
   against the issue's budget of about 2 s per 240x240x155 case.
2. preprocess (crop to the union of nonzero voxels + z-score inside the brain) on each real
   case: ours (``preprocess_volumes``) vs MONAI ``CropForeground`` + ``NormalizeIntensity
   (nonzero=True, channel_wise=True)``, same loaded arrays, with the ratio and the largest
   difference of the results (MONAI takes each channel's own nonzero mask, we the union).
3. --calibration: median z-score of each tumor compartment per sequence, real vs synthetic.
4. --transfer N: does what is learnt on synthetic cases carry to real scans? A voxel classifier
   trained on N synthetic cases only, Dice on the real cases.
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
    from brats_seg.data.preprocessing.preprocess import preprocess_volumes
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case

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


CHANNELS = ("t1n", "t1c", "t2w", "t2f")


def _synthetic_preprocessed(seed: int):
    from brats_seg.config import PreprocessConfig
    from brats_seg.data.preprocessing.preprocess import preprocess_volumes
    from brats_seg.data.reading.cases import CaseVolumes
    from brats_seg.data.reading.image_io import Image
    from brats_seg.data.synth import grid_affine, synthesize_case

    c = synthesize_case(seed, 2.0)
    vol = CaseVolumes(f"synth{seed}", np.stack([c.images[m] for m in CHANNELS]).astype(np.float32), CHANNELS,
                      c.labels("brats2021"), Image(c.images["t1n"], grid_affine(2.0)), "brats2021")
    return preprocess_volumes(vol, PreprocessConfig())


def _real_preprocessed(data: Path):
    from brats_seg.config import PreprocessConfig
    from brats_seg.data.preprocessing.preprocess import preprocess_volumes
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case

    for case in discover_cases(data / "brats2018") + discover_cases(data / "brats-gli"):
        yield preprocess_volumes(load_case(case), PreprocessConfig(spacing=(2.0, 2.0, 2.0)))


def _compartments(pre) -> np.ndarray:
    """0 background, 1 edema, 2 core without ET, 3 ET, per voxel."""
    from brats_seg.conventions import labels_to_regions

    r = labels_to_regions(pre.label, pre.properties["label_scheme"])
    return r[0].astype(np.int8) + r[1] + r[2]


def bench_calibration(data: Path, n: int) -> None:
    """Median z-score (inside the brain) of each compartment and sequence: real cases vs synthetic."""
    names = ("healthy", "edema", "core", "ET")

    def row(pre):
        comp, brain = _compartments(pre), np.any(pre.image != 0, axis=0)
        cells = []
        for k, name in enumerate(names):
            m = (comp == k) & brain
            cells.append(f"{name} " + " ".join(f"{np.median(ch[m]):+.1f}" if m.any() else " nan" for ch in pre.image))
        return " | ".join(cells)

    print("calibration: median z per compartment, channels t1n t1c t2w t2f (2 mm)")
    for pre in _real_preprocessed(data):
        print(f"  {pre.case_id[:20]:20s} {row(pre)}")
    for seed in range(n):
        print(f"  {'synth ' + str(1000 + seed):20s} {row(_synthetic_preprocessed(1000 + seed))}")


def bench_transfer(data: Path, n_train: int) -> None:
    """Synthetic -> real: a per-voxel classifier (gradient boosting on the 4 z-scored channels at three
    smoothing scales) trained on synthetic cases only, scored on the real cases (Dice at 2 mm); beside
    it, the FLAIR > 1.5 z threshold as a whole-tumor baseline."""
    from scipy import ndimage as ndi
    from sklearn.ensemble import HistGradientBoostingClassifier

    def features(img):
        scales = [img] + [np.stack([ndi.gaussian_filter(c, s) for c in img]) for s in (1.0, 3.0)]
        return np.concatenate(scales).reshape(12, -1).T

    rng = np.random.default_rng(0)
    xs, ys = [], []
    for seed in range(n_train):
        pre = _synthetic_preprocessed(1000 + seed)
        y, brain = _compartments(pre).ravel(), np.any(pre.image != 0, axis=0).ravel()
        tumor, healthy = np.flatnonzero(y > 0), np.flatnonzero(brain & (y == 0))
        idx = np.concatenate([tumor, rng.choice(healthy, min(len(healthy), 3 * len(tumor)), replace=False)])
        xs.append(features(pre.image)[idx])
        ys.append(y[idx])
    clf = HistGradientBoostingClassifier(max_iter=150, random_state=0).fit(np.concatenate(xs), np.concatenate(ys))

    def dice(a, b):
        return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)

    scores = []
    for pre in _real_preprocessed(data):
        brain = np.any(pre.image != 0, axis=0)
        pred = clf.predict(features(pre.image)).reshape(brain.shape) * brain
        ref = _compartments(pre)
        scores.append([dice(pred >= k, ref >= k) for k in (1, 2, 3)] + [dice(pre.image[3] > 1.5, ref >= 1)])
        print(f"transfer {pre.case_id}: Dice WT {scores[-1][0]:.3f} TC {scores[-1][1]:.3f} ET {scores[-1][2]:.3f}"
              f" | FLAIR>1.5 WT {scores[-1][3]:.3f}")
    m = np.mean(scores, axis=0)
    print(f"transfer mean over {len(scores)} real cases (trained on {n_train} synthetic): Dice WT {m[0]:.3f}"
          f" TC {m[1]:.3f} ET {m[2]:.3f} | FLAIR>1.5 WT {m[3]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--calibration", action="store_true", help="compartment z-scores, real vs synthetic")
    parser.add_argument("--transfer", type=int, default=0, metavar="N",
                        help="train a voxel classifier on N synthetic cases, score it on the real ones")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "BRATS_SEG_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; torch threads 1")
    bench_synth(args.cases)
    if (args.data / "brats2018").is_dir():
        bench_preprocess(args.data)
        if args.calibration:
            bench_calibration(args.data, 3)
        if args.transfer:
            bench_transfer(args.data, args.transfer)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
