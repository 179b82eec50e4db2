"""Training throughput: optimizer steps per second and the share of time spent waiting for data.

Runs :func:`brats_seg.training.loop.train_one_epoch` (the trainer's own loop: AMP,
deep supervision, grad clipping) on patches from :func:`brats_seg.data.loaders.make_train_loader`
with augmentation, over a synthetic cache. Beside it, the same loop with MONAI's
``DynUNet`` of the same depth as the peer network, so the model's cost can be told
from the loop's.

* CPU, tiny: ``unet3d``/``nnunet`` ``tiny`` at 32^3, batch 2 (seconds).
* GPU (when CUDA is present): ``nnunet`` ``base`` at 128^3, batch 2, bf16 — MONAI's
  DynUNet of that size ran 12.6 steps/s with bf16 on an H100 (issue 6).

Usage::

    python benchmarks/bench_train.py [--device cpu|cuda] [--steps 20] [--workers 2] [--cases 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def make_cache(folder: Path, n_cases: int, spacing: float) -> list[str]:
    from brats_seg.data.preprocessing.cache import cached_case_ids
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset
    from brats_seg.data.synth import synthesize_dataset

    synthesize_dataset(folder / "raw", n_cases, "brats2021", seed=0, spacing=spacing, progress=False)
    preprocess_dataset(folder / "raw", folder / "cache", progress=False)
    return cached_case_ids(folder / "cache")


def dynunet(depth: int, filters: list[int], deep_supervision: bool) -> torch.nn.Module:
    from monai.networks.nets import DynUNet

    strides = [1] + [2] * (depth - 1)
    return DynUNet(3, 4, 3, kernel_size=[3] * depth, strides=strides, upsample_kernel_size=strides[1:],
                   filters=filters, norm_name="instance", deep_supervision=deep_supervision,
                   deep_supr_num=max(1, min(2, depth - 2)), res_block=False)


def run(model: torch.nn.Module, loader, device: torch.device, steps: int, amp: str) -> tuple[float, float]:
    from brats_seg.training.loop import EpochSettings, train_one_epoch
    from brats_seg.training.losses import build_loss

    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.99, nesterov=True)
    for g in opt.param_groups:
        g["base_lr"] = 1e-3
    loss = build_loss("dice_bce")

    class Unbind(torch.nn.Module):  # MONAI DynUNet stacks deep-supervision heads in dim 1
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            y = self.net(x)
            return list(torch.unbind(y, 1)) if self.training and y.ndim == 6 else y

    net = model if hasattr(model, "size_divisor") else Unbind(model)
    settings = EpochSettings(device, total_steps=10**6, amp=amp)
    loader.sampler.set_epoch(0)
    train_one_epoch(net, loader, loss, opt, settings, step=0)  # warm-up epoch
    if device.type == "cuda":
        torch.cuda.synchronize()
    loader.sampler.set_epoch(1)
    stats = train_one_epoch(net, loader, loss, opt, settings, step=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return stats.steps / stats.seconds, stats.data_wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU runs)")
    parser.add_argument("--amp", default=None, help="none or bf16 (default: bf16 on CUDA, none on CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True

    from brats_seg.data.loaders import make_train_loader
    from brats_seg.models.registry import build_model

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ids = make_cache(Path(tmp), args.cases, spacing=1.0 if gpu else 4.0)
        print(f"synthetic cache: {len(ids)} cases in {time.perf_counter() - t0:.0f} s; device {device}"
              + (f" ({torch.cuda.get_device_name()})" if gpu else f", {args.threads} thread(s)"))
        amp = args.amp or ("bf16" if gpu else "none")
        if gpu:
            configs = [("nnunet base", build_model("nnunet", preset="base", deep_supervision=True), 128, amp),
                       ("MONAI DynUNet (same size)", dynunet(6, [32, 64, 128, 256, 320, 320], True), 128, amp)]
        else:
            configs = [("unet3d tiny", build_model("unet3d", preset="tiny", deep_supervision=True), 32, amp),
                       ("nnunet tiny", build_model("nnunet", preset="tiny", deep_supervision=True), 32, amp),
                       ("MONAI DynUNet (tiny size)", dynunet(3, [8, 16, 32], True), 32, amp)]
        for name, model, patch, amp in configs:
            loader = make_train_loader(Path(tmp) / "cache", ids, (patch,) * 3, 2, num_workers=args.workers,
                                       steps_per_epoch=args.steps, in_memory=True)
            rate, wait = run(model, loader, device, args.steps, amp)
            mem = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if gpu else ""
            print(f"  {name:28s} {patch}^3 batch 2 {amp:4s}: {rate:6.2f} steps/s, waiting for data {wait:5.1%}{mem}")
            del loader
            if gpu:
                torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
