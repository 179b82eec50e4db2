"""Whole-case prediction on a TRAINED network: our recipe on each back-end vs MONAI's recipe.

One process, one trained checkpoint, real cases with expert labels, on 1 and on 2 threads.

(a) full recipes, each from the loaded volumes to a label map:
    * MONAI: ``NormalizeIntensity(nonzero=True, channel_wise=True)`` and
      ``sliding_window_inference(mode="gaussian")`` over the WHOLE volume, sigmoid, threshold;
    * ours: ``Predictor.predict`` (crop to the brain, z-score inside it, resample to the
      training spacing when needed, sliding window over the crop, all-zero windows reused,
      labels) with each back-end: torch (channels_last_3d), onnx (ONNX Runtime), openvino,
      and openvino in bf16 (``--precision bf16``) where the CPU has native bf16.
    Same window (the training patch), overlap 0.5, 4 windows per batch, Gaussian blending,
    the same threshold and label rule. Printed: seconds per case and the speed-up over
    MONAI, Dice of each against the expert labels (WT/TC/ET), and the agreement (Dice) of
    our label map with MONAI's.
(b) engines alone, the SAME windows on both sides: the normalized volume cut to a box whose
    sides are window + k * step (so both engines place identical windows), our
    ``sliding_window`` vs MONAI's ``sliding_window_inference`` given our Gaussian map:
    seconds, speed-up and the largest probability difference (must be <= 1e-4).

Without ``--checkpoint`` a small U-Net (unet3d 16..128, 64^3 patches) is trained first on the
four shared BraTS 2018 cases (``--train-steps``, a few minutes on 2 cores) and the run says
so; the cases scored are then BraTS 2021 cases it never saw. Peak resident memory of each
recipe alone is measured by ``benchmarks/bench_memory.py`` (fresh processes).

Measured 2026-12-02 on 2 CPU cores shared with other jobs (load 5-8, so seconds are noisy),
unet3d 16..128 trained 160 steps on the BraTS 2018 cases, BraTS2021_00002, recipes
torch:fp32 torch:bf16 onnx:fp32 openvino:fp32 openvino:bf16; 1 thread / 2 threads:
MONAI 260 / 359 s; ours torch 116 / 156 s (2.24x / 2.31x), torch bf16 4.28x / 4.39x,
onnx 2.88x / 3.71x, openvino 7.20x / 6.89x, openvino bf16 9.93x / 11.67x. Dice vs expert
WT/TC/ET: ours 0.460/0.463/0.512 on every back-end (bf16 0.464 TC), MONAI 0.309/0.299/0.363.
(b) engines on a 128x160x128 box: 0.98x / 0.93x, max probability difference 1.2e-07.

    flock /tmp/brats_cpu.lock .venv/bin/python benchmarks/bench_predict.py --checkpoint best.pt
    .venv/bin/python benchmarks/bench_predict.py --threads 2 --cases ../shared/data/brats2021/BraTS2021_00002
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_CASES = [SHARED / "brats2021" / c for c in ("BraTS2021_00002", "BraTS2021_00495")]
RECIPES = (("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, help="a trained brats_seg checkpoint (default: train a small one)")
    p.add_argument("--cases", type=Path, nargs="+", default=DEFAULT_CASES, help="case folders with labels")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time (default 1 2)")
    p.add_argument("--timed-cases", type=int, default=1,
                   help="cases timed on every thread count but the last (all cases are scored on the last)")
    p.add_argument("--recipes", nargs="+", default=[f"{b}:{p}" for b, p in RECIPES],
                   help="our back-end:precision pairs (default: torch:fp32 onnx:fp32 openvino:fp32 openvino:bf16)")
    p.add_argument("--overlap", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--train-steps", type=int, default=160,
                   help="steps of the fallback training (64^3, batch 2; the figures used 160)")
    p.add_argument("--train-out", type=Path, default=Path("/tmp/brats_seg_bench_predict_run"),
                   help="run folder of the fallback training (reused when it holds a checkpoint)")
    return p.parse_args(argv)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def trained_checkpoint(args) -> Path:
    """``--checkpoint``, or a small U-Net trained on the shared BraTS 2018 cases (said so)."""
    if args.checkpoint is not None:
        return args.checkpoint
    last = args.train_out / "checkpoints" / "last.pt"
    if not last.is_file():
        from brats_seg.training.trainer import TrainConfig, train

        t0 = time.perf_counter()
        train(TrainConfig(data=str(SHARED / "brats2018"), out=str(args.train_out), model="unet3d",
                          model_kwargs={"features": [16, 32, 64, 128], "strides": [1, 2, 2, 2]}, patch=(64, 64, 64),
                          epochs=max(1, args.train_steps // 50), steps_per_epoch=min(50, args.train_steps), lr=1e-2,
                          augment=False, folds=1, workers=1, progress=True))
        print(f"no --checkpoint: trained unet3d 16..128 (64^3, batch 2, {args.train_steps} steps) on the 4 shared"
              f" BraTS 2018 cases in {time.perf_counter() - t0:.0f} s")
    print(f"checkpoint: {last} (the fallback training; pass --checkpoint for your own)")
    return last


def region_dice(pred_labels: np.ndarray, ref_labels: np.ndarray, pred_scheme: str, ref_scheme: str) -> list[float]:
    from brats_seg.conventions import labels_to_regions
    from brats_seg.evaluation.metrics import dice

    return [dice(p, r) for p, r in zip(labels_to_regions(pred_labels, pred_scheme),
                                       labels_to_regions(ref_labels, ref_scheme))]


def monai_recipe(network, window, args):
    """MONAI's whole-volume recipe: ``vol`` -> (labels (H, W, D) uint8, probabilities (3, H, W, D))."""
    from monai.inferers import sliding_window_inference
    from monai.transforms import NormalizeIntensity

    from brats_seg.conventions import regions_to_labels

    normalize = NormalizeIntensity(nonzero=True, channel_wise=True)

    def run(vol, scheme: str):
        x = normalize(torch.from_numpy(vol.image)).as_tensor()[None]
        with torch.inference_mode():
            logits = sliding_window_inference(x, window, args.batch_size, network, overlap=args.overlap,
                                              mode="gaussian")
            probs = torch.sigmoid(logits.float())[0].numpy()
        return regions_to_labels(probs > 0.5, scheme), probs

    return run


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def fmt(scores) -> str:
    return "/".join(f"{s:.3f}" for s in scores)


def compare_recipes(vol, predictors: dict, monai, threads: int) -> dict:
    """Time and score every recipe on one loaded case; print one line each."""
    scheme = vol.label_scheme or "brats2021"
    t_monai, (labels_m, _) = timed(lambda: monai(vol, scheme))
    d_monai = region_dice(labels_m, vol.label, scheme, scheme)
    background = ~np.any(vol.image != 0, axis=0)
    print(f"  {vol.case_id} {threads} thread(s)  MONAI whole volume     {t_monai:7.1f} s           "
          f"Dice vs expert WT/TC/ET {fmt(d_monai)}  tumor voxels outside the brain {(labels_m[background] > 0).sum()}")
    rows = {"MONAI": (t_monai, d_monai, None)}
    for name, predictor in predictors.items():
        t, pred = timed(lambda p=predictor: p.predict(vol, label_scheme=scheme))
        d = region_dice(pred.labels, vol.label, scheme, scheme)
        agree = region_dice(pred.labels, labels_m, scheme, scheme)
        rows[name] = (t, d, agree)
        print(f"  {vol.case_id} {threads} thread(s)  ours {name:17s} {t:7.1f} s ({t_monai / t:4.2f}x)  "
              f"Dice vs expert WT/TC/ET {fmt(d)}  agreement with MONAI {fmt(agree)}"
              f"  outside the brain {(pred.labels[background] > 0).sum()}")
    return rows


def engine_check(vol, network, window, args, threads: int) -> None:
    """(b): both engines on the same normalized box with identical window positions."""
    from monai.inferers import sliding_window_inference
    from monai.transforms import NormalizeIntensity

    from brats_seg.inference.sliding_window import gaussian_importance, sliding_window

    step = int(window[0] * (1 - args.overlap))
    x = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.from_numpy(vol.image)).as_tensor()
    brain = np.argwhere(np.any(vol.image != 0, axis=0))
    lo, hi = brain.min(0), brain.max(0) + 1
    sides = [min(w + step * max(0, (h - low - w) // step), n - (n - w) % step)
             for w, low, h, n in zip(window, lo, hi, x.shape[1:])]
    start = [int(min(max(0, low), n - s)) for low, s, n in zip(lo, sides, x.shape[1:])]
    x = x[(slice(None), *(slice(a, a + s) for a, s in zip(start, sides)))][None].contiguous()
    gauss = gaussian_importance(window)
    with torch.inference_mode():
        t_ours, ours = timed(lambda: torch.sigmoid(sliding_window(x, network, window, args.overlap,
                                                                  args.batch_size)))
        t_monai, theirs = timed(lambda: torch.sigmoid(sliding_window_inference(
            x, window, args.batch_size, network, overlap=args.overlap, mode="constant", roi_weight_map=gauss)))
    diff = float((ours - theirs).abs().max())
    print(f"  (b) engines, same windows ({'x'.join(map(str, sides))} box, {threads} thread(s)): ours {t_ours:.1f} s,"
          f" MONAI {t_monai:.1f} s ({t_monai / t_ours:.2f}x); max |probability difference| {diff:.1e}"
          f" ({'<=' if diff <= 1e-4 else '>'} 1e-4)")


def build_predictors(ckpt, args) -> dict:
    """One warmed-up predictor per ``--recipes`` entry (export and compilation timed apart)."""
    from brats_seg.inference.predictor import Predictor

    out, setup = {}, []
    for recipe in args.recipes:
        backend, precision = recipe.split(":")
        t, out[f"{backend} {precision}"] = timed(lambda b=backend, p=precision: Predictor(
            [str(ckpt)], device="cpu", overlap=args.overlap, tta=0, batch_size=args.batch_size, backend=b,
            precision=p, warn=False))
        t_warm, _ = timed(out[f"{backend} {precision}"].warm_up)
        setup.append(f"{backend} {precision} {t + t_warm:.1f} s")
    print(f"  one-time setup per run (load, ONNX export, compilation, first calls): {', '.join(setup)}")
    return out


def summarize(all_rows: list[dict]) -> None:
    names = list(all_rows[0])
    print(f"\nmean over {len(all_rows)} case(s) on the last thread count (Dice vs expert labels WT/TC/ET):")
    monai_t = np.mean([r["MONAI"][0] for r in all_rows])
    monai_d = np.mean([r["MONAI"][1] for r in all_rows], axis=0)
    for name in names:
        t = np.mean([r[name][0] for r in all_rows])
        d = np.mean([r[name][1] for r in all_rows], axis=0)
        gap = d.mean() - monai_d.mean()
        closer = "closer to the expert labels" if gap > 1e-3 else "MONAI closer" if gap < -1e-3 else "equal"
        verdict = "" if name == "MONAI" else (f"  {monai_t / t:4.2f}x MONAI; mean Dice {d.mean():.3f} vs MONAI"
                                              f" {monai_d.mean():.3f} ({closer})")
        print(f"  {name:22s} {t:7.1f} s  {fmt(d)}{verdict}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from brats_seg.checkpoint import load_checkpoint, model_from_checkpoint
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case

    ckpt = trained_checkpoint(args)
    loaded = load_checkpoint(ckpt)
    window = tuple(int(w) for w in loaded["patch_size"])
    network = model_from_checkpoint(loaded).eval()
    monai = monai_recipe(network, window, args)
    vols = [load_case(discover_cases(c)[0]) for c in args.cases]
    print(f"network {loaded['model']['name']} ({sum(p.numel() for p in network.parameters()) / 1e6:.2f} M parameters),"
          f" window {'x'.join(map(str, window))}, overlap {args.overlap}, {args.batch_size} windows per batch;"
          f" cases {', '.join(v.case_id for v in vols)}")
    all_rows = []
    for i, threads in enumerate(args.threads):
        torch.set_num_threads(threads)
        last = i == len(args.threads) - 1
        print(f"\n{threads} thread(s):")
        predictors = build_predictors(ckpt, args)  # ONNX Runtime and OpenVINO take their threads when built
        for vol in vols if last else vols[: args.timed_cases]:
            rows = compare_recipes(vol, predictors, monai, threads)
            if last:
                all_rows.append(rows)
        engine_check(vols[0], network, window, args, threads)
    summarize(all_rows)
    print(f"peak RSS of this whole process (every recipe, all cases loaded): {peak_rss_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
