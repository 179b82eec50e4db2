"""Training patches per second: our cache loader vs MONAI's LoadImaged pipeline on .nii.gz, side by side.

Both produce augmented ``(4, P, P, P)`` patches with the same augmentation
(:func:`brats_seg.data.augmentation.pipelines.build_augmentation`) and a third of patches
on tumor, through a torch DataLoader with the same number of workers:

* ours: :func:`brats_seg.data.loaders.make_train_loader` over the ``.npy`` cache
  (memory-mapped; crops read only the patch's pages);
* peer: MONAI ``LoadImaged`` of the four ``.nii.gz`` modalities and the label,
  ``EnsureChannelFirstd``, ``NormalizeIntensityd(nonzero, channel_wise)``,
  ``RandCropByPosNegLabeld(pos=1, neg=2)`` — the MONAI BraTS tutorial's recipe.

Usage::

    python benchmarks/bench_loader.py [--data ../shared/data/brats2018] [--patch 128] [--patches 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]


def time_loader(loader, n_batches: int, batch_size: int) -> float:
    it = iter(loader)
    next(it)  # worker start-up and first batch are not counted
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return n_batches * batch_size / (time.perf_counter() - t0)


def peer_loader(cases, patch: int, batch_size: int, workers: int, n_items: int):
    from monai.data import Dataset
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        NormalizeIntensityd,
        RandCropByPosNegLabeld,
    )

    from brats_seg.conventions import labels_to_regions
    from brats_seg.data.augmentation.pipelines import build_augmentation

    files = [{"image": [str(c.images[m]) for m in ("t1n", "t1c", "t2w", "t2f")], "label": str(c.label)}
             for c in cases]
    files = [files[i % len(files)] for i in range(n_items)]
    aug = build_augmentation()
    pipeline = Compose([
        LoadImaged(["image", "label"], image_only=True),
        EnsureChannelFirstd(["image", "label"]),
        NormalizeIntensityd("image", nonzero=True, channel_wise=True),
        RandCropByPosNegLabeld(["image", "label"], "label", spatial_size=(patch,) * 3, pos=1, neg=2, num_samples=1),
    ])

    def item(x):
        d = x[0] if isinstance(x, list) else x
        d = aug({"image": d["image"].float(), "label": d["label"].float()})
        regions = labels_to_regions(np.asarray(d["label"][0]).round().astype(np.uint8), "brats2021")
        return {"image": torch.as_tensor(np.asarray(d["image"])), "label": torch.from_numpy(regions.astype(np.float32))}

    ds = Dataset(files, Compose([pipeline, item]))
    return DataLoader(ds, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "brats2018"))
    parser.add_argument("--cache", help="preprocessing cache (default: a temporary one made from --data)")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--patches", type=int, default=24, help="patches timed per loader")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from brats_seg.data.loaders import make_train_loader
    from brats_seg.data.preprocessing.cache import cached_case_ids
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset
    from brats_seg.data.reading.layouts import discover_cases

    cases = [c for c in discover_cases(args.data) if c.label is not None]
    tmp = tempfile.TemporaryDirectory()
    cache = Path(args.cache or tmp.name)
    preprocess_dataset(cases, cache, progress=False)
    ids = cached_case_ids(cache)
    n_batches = max(1, args.patches // args.batch_size)
    print(f"{len(ids)} cases from {args.data}; {args.patches} patches of 4x{args.patch}^3 with augmentation,"
          f" batch {args.batch_size}, {args.workers} workers, 1 torch thread per process")

    ours = make_train_loader(cache, ids, (args.patch,) * 3, args.batch_size, num_workers=args.workers,
                             steps_per_epoch=n_batches + 1, in_memory=False)
    ours_rate = time_loader(ours, n_batches, args.batch_size)
    del ours
    print(f"  ours (cache, mmap):          {ours_rate:6.2f} patches/s")
    peer = peer_loader(cases, args.patch, args.batch_size, args.workers, (n_batches + 1) * args.batch_size)
    peer_rate = time_loader(peer, n_batches, args.batch_size)
    print(f"  MONAI LoadImaged (.nii.gz):  {peer_rate:6.2f} patches/s")
    print(f"  ratio ours/peer: {ours_rate / peer_rate:.1f}x")
    tmp.cleanup()


if __name__ == "__main__":
    main()
