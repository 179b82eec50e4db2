"""Whole-case prediction: our Predictor against MONAI's sliding_window_inference recipe.

One process, the same network and weights, overlap 0.5, 128^3 windows, 4 windows per
batch, Gaussian blending, one real 240x240x155 case, no TTA. The case is loaded once
(reading files is not timed for either side).

* ours: ``Predictor.predict`` = crop to the brain, z-score inside the brain, sliding
  window over the crop (all-zero windows reused), sigmoid, restore to the full grid,
  threshold and labels;
* MONAI: ``NormalizeIntensity(nonzero=True, channel_wise=True)`` on the whole volume,
  ``sliding_window_inference(mode="gaussian")`` on the whole volume, sigmoid.

Prints the time ratio, the largest and mean absolute difference of the probability maps
inside the brain, the agreement of the thresholded regions, and the process's peak
resident memory after our prediction (``resource.getrusage``; ours runs first). On CUDA
both sides use bf16 autocast and channels_last_3d and report per-case seconds after a
warm-up. On CPU ours runs channels_last_3d (part of our recipe, about 1.4x on oneDNN);
MONAI's recipe runs the default memory format unless ``--monai-channels-last``.

Measured 2026-11-26 on 2 shared CPU cores (Brats18_2013_3_1, crop 144x155x137: 8 windows
against MONAI's 18; timings vary with the other load on the machine):
segresnet tiny: ours 8.9 s, MONAI 29.7 s (3.35x; best of 2 under more load 14.5 vs 40.5 s, 2.8x);
with ``--monai-channels-last`` 14.5 vs 30.2 s (2.1x); SegResNet 16 filters (4.7 M parameters,
MONAI's tutorial size): 56.7 vs 178.8 s (3.15x); peak RSS after ours 2.1 GB (3.2 GB with
SegResNet-16); engine check 4.8e-07.

    .venv/bin/python benchmarks/bench_predict.py                       # CPU, segresnet tiny
    .venv/bin/python benchmarks/bench_predict.py --model nnunet --preset base --device cuda --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASE = ROOT.parent / "shared" / "data" / "brats2018" / "Brats18_2013_3_1"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", type=Path, default=DEFAULT_CASE, help="a case folder (240x240x155)")
    p.add_argument("--model", default="segresnet", help="registered model name")
    p.add_argument("--preset", default="tiny", choices=("tiny", "base"))
    p.add_argument("--kwargs", default="{}", help='JSON model kwargs overriding the preset ({"init_filters": 16})')
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per side (the best is reported)")
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--overlap", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--skip-monai", action="store_true", help="time only ours (e.g. to measure our memory alone)")
    p.add_argument("--monai-channels-last", action="store_true",
                   help="give MONAI's network channels_last_3d on CPU too (ours uses it; on CUDA both always do)")
    p.add_argument("--no-engine-check", action="store_true", help="skip the same-input, same-windows engine check")
    p.add_argument("--network-times", action="store_true",
                   help="also time the network part alone (normalized input already on the device); always on CUDA")
    return p.parse_args(argv)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device: torch.device):
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    args = parse_args(argv)
    from monai.inferers import sliding_window_inference
    from monai.transforms import NormalizeIntensity

    from brats_seg.checkpoint import make_checkpoint
    from brats_seg.data.cases import load_case
    from brats_seg.data.layouts import discover_cases
    from brats_seg.inference.predictor import Predictor
    from brats_seg.models.registry import build_model

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    vol = load_case(discover_cases(args.case)[0], with_label=False)
    torch.manual_seed(0)
    net = build_model(args.model, preset=args.preset, **json.loads(args.kwargs)).eval()
    n_params = sum(p.numel() for p in net.parameters())
    window = (args.window,) * 3
    ckpt = make_checkpoint(net, model_name=args.model, model_kwargs=net.build_kwargs, patch_size=window)
    predictor = Predictor([ckpt], device=device, overlap=args.overlap, batch_size=args.batch_size, tta=0)
    print(f"case {vol.case_id} {'x'.join(map(str, vol.image.shape))}, {args.model} ({args.preset}, "
          f"{n_params / 1e6:.2f} M parameters), {device}, window {args.window}^3, overlap {args.overlap}, "
          f"{args.batch_size} windows per batch, threads {torch.get_num_threads()}")

    if cuda or args.repeats > 1:
        predictor.predict(vol)  # warm-up (cuDNN autotuning, allocator)
    t_ours, pred = timed(lambda: predictor.predict(vol), args.repeats, device)
    rss_ours = peak_rss_gb()
    print(f"ours : {t_ours:7.2f} s per case (crop {pred.info['bbox']}), peak RSS so far {rss_ours:.2f} GB")
    if args.skip_monai:
        return 0

    monai_net = net.to(device)
    if cuda or args.monai_channels_last:
        monai_net = monai_net.to(memory_format=torch.channels_last_3d)
    normalize = NormalizeIntensity(nonzero=True, channel_wise=True)

    def monai_recipe_on(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = sliding_window_inference(x, window, args.batch_size, monai_net, overlap=args.overlap,
                                              mode="gaussian")
            return torch.sigmoid(logits.float())

    def monai_recipe() -> torch.Tensor:
        x = normalize(torch.from_numpy(vol.image)).as_tensor()[None].to(device)
        return monai_recipe_on(x)[0].cpu()

    if cuda or args.repeats > 1:
        monai_recipe()
    t_monai, probs_monai = timed(monai_recipe, args.repeats, device)
    probs_monai = probs_monai.numpy()
    print(f"MONAI: {t_monai:7.2f} s per case (whole volume)")

    brain = np.any(vol.image != 0, axis=0)
    diff = np.abs(pred.probabilities - probs_monai)[:, brain]
    ours_r, monai_r = pred.probabilities > 0.5, probs_monai > 0.5
    agree = [float(2 * (a & b)[brain].sum() / max(1, a[brain].sum() + b[brain].sum())) for a, b in zip(ours_r, monai_r)]
    outside = float(np.abs(probs_monai[:, ~brain]).max()) if (~brain).any() else 0.0
    print(f"speed-up MONAI / ours: {t_monai / t_ours:.2f}x")
    print(f"probabilities inside the brain: max |ours - MONAI| = {diff.max():.4f}, mean {diff.mean():.5f};"
          f" Dice of thresholded regions WT/TC/ET = {agree[0]:.4f}/{agree[1]:.4f}/{agree[2]:.4f}")
    print(f"outside the brain ours writes 0 (background); MONAI's probabilities there reach {outside:.3f}")
    print(f"peak RSS after our prediction: {rss_ours:.2f} GB (target < 6 GB); after both: {peak_rss_gb():.2f} GB")
    if cuda or args.network_times:
        network_times(vol, predictor, monai_recipe_on, normalize, device, args)
    if not args.no_engine_check:
        engine_check(vol, monai_net, normalize, device, args.batch_size)
    return 0


def network_times(vol, predictor, monai_on, normalize, device, args) -> None:
    """Seconds of the GPU/CPU network part alone: normalized input already on the device, sigmoid
    probabilities left there (what the published MONAI H100 figure measures)."""
    from brats_seg.data.preprocess import preprocess_volumes
    from brats_seg.inference.sliding_window import sliding_window

    m = predictor.members[0]
    crop = torch.from_numpy(preprocess_volumes(vol, m.preprocessing).image)[None].to(device)
    full = normalize(torch.from_numpy(vol.image)).as_tensor()[None].to(device)

    def ours() -> torch.Tensor:
        with torch.inference_mode():
            return torch.sigmoid_(sliding_window(crop, m.network, m.window, args.overlap, args.batch_size,
                                                 amp=predictor.amp, channels_last=predictor.channels_last))

    reps = max(args.repeats, 3 if device.type == "cuda" else 1)
    if device.type == "cuda":
        ours(), monai_on(full)
    t_ours, _ = timed(ours, reps, device)
    t_monai, _ = timed(lambda: monai_on(full), reps, device)
    print(f"network part only (input on the device): ours {t_ours:.3f} s, MONAI {t_monai:.3f} s,"
          f" speed-up {t_monai / t_ours:.2f}x (best of {reps})")


def engine_check(vol, net, normalize, device, batch_size: int) -> None:
    """Both engines on the SAME input with the SAME window positions (a 128x128x64 crop, 64^3
    windows, overlap 0.5: starts 0, 32, 64 in both). The recipes above differ by design (ours
    crops to the brain first, so its windows sit elsewhere and a network with per-window
    normalization sees other context); this isolates the blending engine itself."""
    from monai.inferers import sliding_window_inference

    from brats_seg.inference.sliding_window import gaussian_importance, sliding_window

    x = normalize(torch.from_numpy(vol.image)).as_tensor()
    centre = [int(np.mean(np.flatnonzero(np.any(vol.image != 0, axis=tuple(a for a in range(4) if a != ax)))))
              for ax in (1, 2, 3)]
    crop = tuple(slice(max(0, c - s // 2), max(0, c - s // 2) + s) for c, s in zip(centre, (128, 128, 64)))
    x = x[(slice(None), *crop)][None].contiguous().to(device)
    window = (64, 64, 64)
    with torch.inference_mode():
        ours = sliding_window(x, net, window, 0.5, batch_size)
        same_map = sliding_window_inference(x, window, batch_size, net, overlap=0.5, mode="constant",
                                            roi_weight_map=gaussian_importance(window, device))
        monai_map = sliding_window_inference(x, window, batch_size, net, overlap=0.5, mode="gaussian")
    d1 = float((ours - same_map).abs().max())
    d2 = float((ours - monai_map).abs().max())
    print(f"engine check (same input and windows, logits): max |ours - MONAI| = {d1:.2e} with our Gaussian map"
          f" passed to MONAI; {d2:.2e} with MONAI's own map (the same Gaussian but clamped to >= 1e-3, which"
          f" flattens the weights near the volume's edges and corners, where every covering window is near"
          f" its own border; where overlapping windows of a network disagree, the blend follows the weights)")


if __name__ == "__main__":
    sys.exit(main())
