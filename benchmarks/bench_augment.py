"""Augmentation cost per training patch on one core: our default (MONAI) vs our nnU-Net v2 pipeline vs
nnU-Net's own batchgeneratorsv2 transforms, side by side in one process on real BraTS crops.

"Per patch" is what one data-loader worker spends on one training patch: the crop from the
preprocessing cache (the patch itself, or nnU-Net's larger crop), the augmentation and the regions:

* none: :class:`brats_seg.data.loaders.PatchDataset` without augmentation;
* default: the same with ``AugmentConfig()`` (the ``monai`` pipeline, today's default);
* nnunet (ours): ``AugmentConfig`` of ``--recipe nnunet`` (206^3 crop for 128^3);
* nnU-Net (peer): the transform list of ``nnUNetTrainer.get_training_transforms`` built from
  batchgeneratorsv2 (205^3 crop, -1 outside the brain, mask, regions), on crops at the same places.

Then each nnU-Net transform of ours alone (probability 1) on the same crops, to show where the time goes.
A GPU step must wait for data unless ``workers x patches/s per core >= batch / step time``.

Usage::

    python benchmarks/bench_augment.py [--data ../shared/data/brats2018] [--patch 128] [--patches 24] [--cases 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
REGIONS = {"brats2021": [(1, 2, 4), (1, 4), (4,)], "brats2023": [(1, 2, 3), (1, 3), (3,)]}
ALONE = ("p_rotate", "p_scale", "p_noise", "p_blur", "p_brightness", "p_contrast", "p_lowres", "p_gamma_inverted",
         "p_gamma", "p_flip")


def seconds_per_patch(sample, n: int) -> float:
    sample(0)  # first call: imports, caches
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        sample(i)
    return (time.perf_counter() - t0) / n


def peer_pipeline(patch: int, scheme: str):
    """nnUNetTrainer.get_training_transforms (3-D, no cascade, no ignore label, regions) in batchgeneratorsv2."""
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
    from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform

    rot = (-math.radians(30), math.radians(30))
    return ComposeTransforms([
        SpatialTransform((patch,) * 3, patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0,
                         p_rotation=0.2, rotation=rot, p_scaling=0.2, scaling=(0.7, 1.4),
                         p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False),
        RandomTransform(GaussianNoiseTransform((0, 0.1), p_per_channel=1, synchronize_channels=True), 0.1),
        RandomTransform(GaussianBlurTransform((0.5, 1.0), synchronize_channels=False, synchronize_axes=False,
                                              p_per_channel=0.5, benchmark=True), 0.2),
        RandomTransform(MultiplicativeBrightnessTransform(BGContrast((0.75, 1.25)), synchronize_channels=False,
                                                          p_per_channel=1), 0.15),
        RandomTransform(ContrastTransform(BGContrast((0.75, 1.25)), preserve_range=True, synchronize_channels=False,
                                          p_per_channel=1), 0.15),
        RandomTransform(SimulateLowResolutionTransform((0.5, 1), synchronize_channels=False, synchronize_axes=True,
                                                       ignore_axes=None, allowed_channels=None, p_per_channel=0.5),
                        0.25),
        RandomTransform(GammaTransform(BGContrast((0.7, 1.5)), p_invert_image=1, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1), 0.1),
        RandomTransform(GammaTransform(BGContrast((0.7, 1.5)), p_invert_image=0, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1), 0.3),
        MirrorTransform(allowed_axes=(0, 1, 2)),
        MaskImageTransform(apply_to_channels=[0, 1, 2, 3], channel_idx_in_seg=0, set_outside_to=0),
        RemoveLabelTansform(-1, 0),
        ConvertSegmentationToRegionsTransform(REGIONS[scheme], channel_in_seg=0),
    ])


def peer_sampler(ds, patch: int):
    """Crops of nnU-Net's size (205^3 for 128^3) around the same centres as ``ds`` (our loader), then the peer."""
    from brats_seg.data.loaders import crop_patch, is_foreground_sample

    crop = int(patch * (math.cos(math.radians(30)) + math.sin(math.radians(30))) / 0.85)  # get_patch_size
    pipelines = {}

    def sample(index: int):
        rng = np.random.default_rng([ds.seed, index])
        i = int(rng.integers(len(ds.cases)))
        case = ds.cases[i]
        lo = ds._corner(rng, i, is_foreground_sample(index, ds.batch_size, ds.fg_fraction))
        lo = [c - (crop - patch) // 2 for c in lo]
        image = torch.from_numpy(crop_patch(case.image, lo, (crop,) * 3))
        seg = crop_patch(case.label, lo, (crop,) * 3).astype(np.int16)
        seg[(seg == 0) & (image.numpy() == 0).all(0)] = -1  # nnU-Net marks outside the brain with -1
        transform = pipelines.setdefault(case.label_scheme, peer_pipeline(patch, case.label_scheme))
        np.random.seed(index)
        torch.manual_seed(index)
        return transform(image=image, segmentation=torch.from_numpy(seg)[None])

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "brats2018"))
    parser.add_argument("--cases", type=int, default=2, help="labelled cases preprocessed from --data")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--patches", type=int, default=24, help="patches timed per pipeline")
    parser.add_argument("--alone", type=int, default=6, help="patches timed per single transform")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from brats_seg.data.augmentation.augment_config import AugmentConfig
    from brats_seg.data.loaders import PatchDataset
    from brats_seg.data.preprocessing.cache import cached_case_ids
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.training.train_config import recipe_config

    cases = [c for c in discover_cases(args.data) if c.label is not None][: args.cases]
    tmp = tempfile.TemporaryDirectory()
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset

    preprocess_dataset(cases, tmp.name, progress=False)
    ids = cached_case_ids(tmp.name)
    patch = (args.patch,) * 3
    nnunet = recipe_config("nnunet").augmentation

    def loader(augment):
        ds = PatchDataset(tmp.name, ids, patch, batch_size=2, fg_fraction=0.33, augment=augment, seed=0,
                          in_memory=True)
        return ds, ds.__getitem__

    print(f"{len(ids)} cases from {args.data}; 4x{args.patch}^3 patches, one core (1 torch thread), "
          f"{args.patches} patches per pipeline (same seeds, a third tumor-centred)")
    rates = {}
    for name, augment in (("none (crop + regions)", False), ("default (monai pipeline)", AugmentConfig()),
                          ("nnunet pipeline (ours)", nnunet)):
        ds, sample = loader(augment)
        rates[name] = seconds_per_patch(sample, args.patches)
        print(f"  {name:32s} {rates[name]:6.3f} s/patch  crop {'x'.join(map(str, ds.crop_size))}")
    ds, _ = loader(False)
    peer = seconds_per_patch(peer_sampler(ds, args.patch), args.patches)
    print(f"  {'nnU-Net batchgeneratorsv2 (peer)':32s} {peer:6.3f} s/patch")
    ours = rates["nnunet pipeline (ours)"]
    print(f"  ratio peer/ours: {peer / ours:.2f}x; nnunet/default: {ours / rates['default (monai pipeline)']:.2f}x")
    print(f"each nnU-Net transform alone (probability 1, {args.alone} patches), minus the crop of the larger crop:")
    off = {k: 0.0 for k in ALONE}
    _, base = loader(dataclasses.replace(nnunet, **off))
    floor = seconds_per_patch(base, args.alone)
    print(f"  {'(larger crop + centre, nothing on)':32s} {floor:6.3f} s/patch")
    for key in ALONE:
        _, sample = loader(dataclasses.replace(nnunet, **{**off, key: 1.0}))
        print(f"  {key:32s} {seconds_per_patch(sample, args.alone) - floor:+6.3f} s/patch")
    tmp.cleanup()


if __name__ == "__main__":
    main()
