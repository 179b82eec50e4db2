"""Every registered model: parameters, GFLOPs per 4x128^3 patch, CPU forward time at 64^3 and 128^3.

    python benchmarks/bench_models.py            # base presets (slow on a CPU: minutes)
    python benchmarks/bench_models.py --quick    # tiny presets only
    python benchmarks/bench_models.py --peers    # also MONAI's DynUNet / VNet beside our nnunet / vnet

GFLOPs are counted on the meta device (brats_seg.models.profile); times are the median
of ``--repeat`` eval-mode forward passes of one ``(1, 4, S, S, S)`` input under
``torch.inference_mode`` after one warm-up pass, with ``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from brats_seg.models.profile import profile_model
from brats_seg.models.registry import build_model, list_models


def forward_seconds(model: torch.nn.Module, size: int, repeat: int) -> float:
    return paired_seconds([model], size, repeat)[0]


def paired_seconds(models: list[torch.nn.Module], size: int, repeat: int) -> list[float]:
    """Median forward seconds of each model; the models take turns, so load changes hit them alike."""
    x = torch.randn(1, 4, size, size, size)
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for m in models:
            m(x)  # warm-up (allocator, oneDNN primitives)
        for _ in range(repeat):
            for m, t in zip(models, times):
                t0 = time.perf_counter()
                m(x)
                t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def peers(preset: str, size: int, repeat: int) -> list[tuple[str, float, str, float, float, float]]:
    """Our nnunet / vnet beside MONAI's DynUNet / VNet of the same configuration.

    Rows: (ours, our params (M), peer, peer params (M), our seconds, peer seconds)."""
    from monai.networks.nets import DynUNet, VNet

    features = [32, 64, 128, 256, 320, 320] if preset == "base" else [4, 8, 16]
    strides = [1, 2, 2, 2, 2, 2][: len(features)]
    pairs = [("nnunet", build_model("nnunet", preset=preset), "monai DynUNet",
              DynUNet(3, 4, 3, kernel_size=[3] * len(features), strides=strides, upsample_kernel_size=strides[1:],
                      filters=features, norm_name="instance", act_name="leakyrelu"))]
    if preset == "base":  # MONAI's VNet has fixed widths (16..256): our base preset
        pairs.append(("vnet", build_model("vnet", preset="base"), "monai VNet", VNet(3, 4, 3)))
    rows = []
    for ours, ours_net, peer, peer_net in pairs:
        t_ours, t_peer = paired_seconds([ours_net.eval(), peer_net.eval()], size, repeat)
        rows.append((ours, _params(ours_net), peer, _params(peer_net), t_ours, t_peer))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny presets only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--peers", action="store_true", help="time MONAI DynUNet/VNet beside nnunet/vnet")
    args = parser.parse_args()
    preset = "tiny" if args.quick else "base"
    print(f"preset {preset}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, median of {args.repeat}")
    sizes = "".join(f" {f'fwd {s}^3 (s)':>13}" for s in args.sizes)
    print(f"{'model':<18} {'params(M)':>9} {'GFLOPs@128^3':>12}{sizes}")
    for name in args.models or list_models():
        info = profile_model(name, preset=preset)
        torch.manual_seed(0)
        model = build_model(name, preset=preset).eval()
        times = [forward_seconds(model, s, args.repeat) for s in args.sizes]
        print(f"{name:<18} {info['parameters'] / 1e6:>9.2f} {info['gflops']:>12.1f}"
              + "".join(f" {t:>13.3f}" for t in times), flush=True)
    if args.peers:
        size = args.sizes[0]
        print(f"\npeers at {size}^3 ({preset}): ours vs MONAI, forward seconds and ratio (MONAI / ours)")
        for ours, p_ours, peer, p_peer, t_ours, t_peer in peers(preset, size, args.repeat):
            print(f"{ours:<8} {p_ours:7.2f}M {t_ours:8.3f}s   {peer:<14} {p_peer:7.2f}M {t_peer:8.3f}s"
                  f"   ratio {t_peer / t_ours:5.2f}")


if __name__ == "__main__":
    main()
