"""The GPU figures in one run (< 8 minutes on one GPU), each beside its peer in this process.

1. Prediction of one real case, ``nnunet`` base (31 M parameters), no TTA, 128^3 windows,
   overlap 0.5, 4 windows per batch, bf16: our ``Predictor`` (crop to the brain, windows
   over the crop) vs MONAI's ``sliding_window_inference`` over the whole volume with the
   same network, bf16 autocast and channels_last_3d. Seconds per case after a warm-up
   (median of ``--repeats``), from the loaded volumes to labels, and the network part alone
   (normalized input already on the device). Target: <= 0.05 s per case on an H100-class
   GPU (MONAI: 0.21 s measured there).
2. TFLOP/s achieved on the windows: FLOPs of one window (counted on the meta device,
   :mod:`brats_seg.models.profile`) x windows computed / seconds of the network part.
3. Training steps/s at 128^3, batch 2, bf16: ``nnunet`` base in our training loop vs MONAI's
   ``DynUNet`` of the same size (reference: 12.6 steps/s on an H100), with augmentation in
   the loader workers (CPU, MONAI transforms) and on the device (``augment_on_device``).
4. The share of step time spent waiting for data in each (target < 5 %).

``--device cpu --tiny`` runs the same code path small (``nnunet`` tiny, 32^3 windows and
patches, a 96x96x64 box of the case, 4 mm synthetic training cases) to check it works.

    .venv/bin/python benchmarks/gpu_suite.py                       # on a GPU machine
    .venv/bin/python benchmarks/gpu_suite.py --device cpu --tiny   # dry run of the code path
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import dynunet, make_cache, run  # noqa: E402  (the training loop timing, shared)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASE = ROOT.parent / "shared" / "data" / "brats2018" / "Brats18_2013_3_1"


class Counting(torch.nn.Module):
    """Counts the windows a network is called on."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.windows = net, 0

    def forward(self, x):
        self.windows += x.shape[0]
        return self.net(x)


class DeviceAugmented:
    """A loader whose batches are augmented on the device (what ``augment_on_device`` does)."""

    def __init__(self, loader, device: torch.device):
        from brats_seg.data.augmentation.gpu_augment import DeviceAugmentation

        self.loader, self.device, self.augmentation = loader, device, DeviceAugmentation()
        self.sampler = loader.sampler

    def __iter__(self):
        from brats_seg.data.augmentation.gpu_augment import augment_batches

        return augment_batches(self.loader, self.augmentation, self.device, epoch=self.sampler.epoch)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_volume(case: Path, tiny: bool):
    from brats_seg.data.reading.cases import CaseVolumes
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case

    vol = load_case(discover_cases(case)[0], with_label=False)
    if tiny:  # a central box keeps the CPU dry run short
        box = tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(vol.image.shape[1:], (96, 96, 64)))
        vol = CaseVolumes(vol.case_id, vol.image[(slice(None), *box)].copy(), vol.channels, None, vol.reference,
                          vol.label_scheme)
    return vol


def prediction(args, device: torch.device) -> None:
    """Items 1 and 2."""
    from monai.inferers import sliding_window_inference
    from monai.transforms import NormalizeIntensity

    from brats_seg.checkpoint import make_checkpoint
    from brats_seg.data.preprocessing.preprocess import preprocess_volumes
    from brats_seg.inference.predictor import Predictor
    from brats_seg.inference.sliding_window import sliding_window
    from brats_seg.models.profile import profile_model
    from brats_seg.models.registry import build_model

    preset, window = ("tiny", (32,) * 3) if args.tiny else ("base", (128,) * 3)
    vol = load_volume(args.case, args.tiny)
    torch.manual_seed(0)
    net = build_model("nnunet", preset=preset).eval()
    ckpt = make_checkpoint(net, model_name="nnunet", model_kwargs=net.build_kwargs, patch_size=window)
    ckpt["spacing"] = [1.0, 1.0, 1.0]
    bf16 = device.type == "cuda"
    predictor = Predictor([ckpt], device=device, precision="bf16" if bf16 else "fp32", warn=False)
    predictor.warm_up()
    monai_net = net.to(device).to(memory_format=torch.channels_last_3d)
    normalize = NormalizeIntensity(nonzero=True, channel_wise=True)

    def monai_on(x: torch.Tensor, network=monai_net) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return torch.sigmoid(sliding_window_inference(x, window, 4, network, overlap=0.5, mode="gaussian").float())

    def monai_case():
        x = normalize(torch.from_numpy(vol.image)).as_tensor()[None].to(device)
        return (monai_on(x)[0] > 0.5).cpu()

    monai_case(), predictor.predict(vol)  # warm-up (cuDNN autotuning, allocator)
    t_ours = median_time(lambda: predictor.predict(vol), args.repeats, device)
    t_monai = median_time(monai_case, args.repeats, device)
    print(f"1. prediction, {vol.case_id} {'x'.join(map(str, vol.image.shape))}, nnunet {preset},"
          f" {'bf16' if bf16 else 'fp32'}, no TTA: ours {t_ours:.3f} s per case, MONAI {t_monai:.3f} s"
          f" ({t_monai / t_ours:.2f}x; target <= 0.05 s on an H100, MONAI 0.21 s there)")
    crop = torch.from_numpy(preprocess_volumes(vol, predictor.members[0].preprocessing).image)[None].to(device)
    full = normalize(torch.from_numpy(vol.image)).as_tensor()[None].to(device)
    ours_net, peer_net = Counting(predictor.members[0].network), Counting(monai_net)
    t_net = median_time(lambda: sliding_window(crop, ours_net, window, 0.5, 4, amp=bf16, channels_last=True),
                        args.repeats, device)
    t_peer = median_time(lambda: monai_on(full, peer_net), args.repeats, device)
    flops = profile_model("nnunet", preset=preset, patch=window)["gflops"] * 1e9
    for name, t, counter in (("ours", t_net, ours_net), ("MONAI", t_peer, peer_net)):
        windows = counter.windows // args.repeats
        print(f"2. network part ({name}): {t:.3f} s, {windows} windows, {flops * windows / t / 1e12:.3g} TFLOP/s")


def training(args, device: torch.device) -> None:
    """Items 3 and 4."""
    from brats_seg.data.loaders import make_train_loader
    from brats_seg.models.registry import build_model

    patch = 32 if args.tiny else 128
    with tempfile.TemporaryDirectory() as tmp:
        ids = make_cache(Path(tmp), args.cases, spacing=4.0 if args.tiny else 1.0)
        if args.tiny:
            ours, peer = (build_model("nnunet", preset="tiny", deep_supervision=True), dynunet(3, [8, 16, 32], True))
        else:
            ours = build_model("nnunet", preset="base", deep_supervision=True)
            peer = dynunet(6, [32, 64, 128, 256, 320, 320], True)
        amp = "bf16" if device.type == "cuda" else "none"
        for name, model in (("nnunet " + ("tiny" if args.tiny else "base"), ours), ("MONAI DynUNet", peer)):
            for where in ("the loader workers (CPU)", "on the device"):
                on_device = where == "on the device"
                loader = make_train_loader(Path(tmp) / "cache", ids, (patch,) * 3, 2, num_workers=args.workers,
                                           steps_per_epoch=args.steps, in_memory=True, augment=not on_device)
                batches = DeviceAugmented(loader, device) if on_device else loader
                rate, wait = run(model, batches, device, args.steps, amp)
                print(f"3./4. {name:16s} {patch}^3 batch 2 {amp}, augmentation {where:24s}: {rate:6.2f} steps/s,"
                      f" waiting for data {wait:5.1%} (targets: 12.6 steps/s, < 5 %)")
                del loader


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="small models and sizes (a dry run of the code path)")
    p.add_argument("--case", type=Path, default=DEFAULT_CASE)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    p.add_argument("--cases", type=int, default=6, help="synthetic training cases")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="loader worker processes")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    t0 = time.perf_counter()
    prediction(args, device)
    training(args, device)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
