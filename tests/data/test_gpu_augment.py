"""On-device augmentation (run here on CPU tensors) gives the same kind of samples as the CPU
path (MONAI, per sample): shapes, binary nested regions, flip frequencies, intensity statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import stats

from brats_seg.conventions import labels_to_regions
from brats_seg.data.augmentation.augment_config import AugmentConfig
from brats_seg.data.augmentation.gpu_augment import DeviceAugmentation, augment_batches
from brats_seg.data.augmentation.metatensor import plain_tensor
from brats_seg.data.augmentation.pipelines import build_augmentation
from brats_seg.errors import ConfigError

OFF = dict(p_rotate=0.0, p_scale=0.0, p_noise=0.0, p_blur=0.0, p_brightness=0.0, p_shift=0.0, p_gamma=0.0,
           p_flip=0.0)
N = 96


def patch(size=12, seed=0):
    """A smooth, z-scored 4-channel patch and its brats2021 label (edema around core around ET)."""
    rng = np.random.default_rng(seed)
    idx = np.indices((size,) * 3).astype(np.float32)
    r = np.sqrt(sum((idx[i] - size * (0.4 + 0.05 * i)) ** 2 for i in range(3)))
    label = np.where(r < 5, 2, 0) + np.where(r < 3, 2, 0) - np.where(r < 1.5, 3, 0)  # 2 edema, 4 ET, 1 core
    image = np.stack([np.cos(idx[0] / 3 + k) + idx[1] / size + 0.2 * rng.standard_normal(idx[0].shape)
                      for k in range(4)]).astype(np.float32)
    image = (image - image.mean()) / image.std()
    return torch.from_numpy(image), label.astype(np.uint8)


def cpu_samples(cfg, image, label, n=N):
    """``n`` samples of the CPU path: (images, regions) as the loader makes them."""
    aug = build_augmentation(cfg)
    images, regions = [], []
    for i in range(n):
        aug.set_random_state(seed=i)
        out = aug({"image": image.clone(), "label": torch.from_numpy(label[None].astype(np.float32))})
        images.append(plain_tensor(out["image"]).float())
        lab = plain_tensor(out["label"])[0].round().to(torch.uint8).numpy()
        regions.append(torch.from_numpy(labels_to_regions(lab, "brats2021").astype(np.float32)))
    return torch.stack(images), torch.stack(regions)


def device_samples(cfg, image, label, n=N, batch=4):
    aug = DeviceAugmentation(cfg)
    regions = torch.from_numpy(labels_to_regions(label, "brats2021").astype(np.float32))
    one = {"image": image.expand(batch, *image.shape), "label": regions.expand(batch, *regions.shape)}
    loader = [one] * (n // batch)
    out = list(augment_batches(loader, aug, torch.device("cpu"), seed=1))
    return torch.cat([b["image"] for b in out]), torch.cat([b["label"] for b in out])


def flip_of(sample: torch.Tensor, original: torch.Tensor) -> tuple[int, ...]:
    for axes in ((), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)):
        if torch.allclose(sample, original.flip(axes) if axes else original):
            return axes
    raise AssertionError("not a flip of the input")


def test_shapes_and_nested_binary_regions_with_the_default_recipe():
    image, label = patch()
    images, regions = device_samples(AugmentConfig(), image, label, n=64)
    cpu_images, cpu_regions = cpu_samples(AugmentConfig(), image, label, n=8)
    assert images.shape[1:] == cpu_images.shape[1:] and regions.shape[1:] == cpu_regions.shape[1:]
    assert images.dtype == cpu_images.dtype == torch.float32 and regions.dtype == cpu_regions.dtype
    assert set(torch.unique(regions).tolist()) <= {0.0, 1.0}
    wt, tc, et = regions[:, 0].bool(), regions[:, 1].bool(), regions[:, 2].bool()
    assert not (tc & ~wt).any() and not (et & ~tc).any()  # ET inside TC inside WT after resampling
    assert torch.isfinite(images).all()


def test_flip_frequencies_match_the_cpu_path():
    cfg = AugmentConfig(**{**OFF, "p_flip": 0.5})
    image, label = patch()
    for images, regions in (cpu_samples(cfg, image, label), device_samples(cfg, image, label)):
        flips = [flip_of(x, image) for x in images]
        region0 = torch.from_numpy(labels_to_regions(label, "brats2021").astype(np.float32))
        assert all(torch.equal(r, region0.flip(a) if a else region0) for r, a in zip(regions, flips))
        for axis in (1, 2, 3):
            share = np.mean([axis in a for a in flips])
            assert abs(share - 0.5) < 0.12, (axis, share)  # 3.7 binomial sigmas at N = 96


@pytest.mark.parametrize("field", ["p_noise", "p_blur", "p_brightness", "p_shift", "p_gamma"])
def test_intensity_statistics_match_the_cpu_path(field):
    """Each intensity transform alone at probability 0.5: the per-sample mean and standard deviation
    have the same distribution on both paths (two-sample Kolmogorov-Smirnov)."""
    cfg = AugmentConfig(**{**OFF, field: 0.5})
    image, label = patch()
    cpu, dev = cpu_samples(cfg, image, label)[0], device_samples(cfg, image, label)[0]
    for stat in (lambda x: x.mean(dim=(1, 2, 3, 4)), lambda x: x.std(dim=(1, 2, 3, 4))):
        a, b = stat(cpu).numpy(), stat(dev).numpy()
        assert stats.ks_2samp(a, b).pvalue > 1e-3, (field, a.mean(), b.mean())


def test_spatial_transform_fires_as_often_and_keeps_labels():
    cfg = AugmentConfig(**{**OFF, "p_rotate": 0.2, "p_scale": 0.2})
    image, label = patch()
    shares = []
    for images, regions in (cpu_samples(cfg, image, label), device_samples(cfg, image, label)):
        changed = [not torch.allclose(x, image, atol=1e-5) for x in images]
        shares.append(np.mean(changed))
        assert set(torch.unique(regions).tolist()) <= {0.0, 1.0}
    assert abs(shares[0] - 0.36) < 0.17 and abs(shares[1] - 0.36) < 0.17, shares  # 3.5 sigmas


def test_reproducible_and_refuses_elastic():
    cfg = AugmentConfig()
    image, label = patch()
    a, b = device_samples(cfg, image, label, n=8), device_samples(cfg, image, label, n=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ConfigError, match="elastic"):
        DeviceAugmentation(dataclasses.replace(cfg, p_elastic=0.1))
    with pytest.raises(ConfigError, match="'monai' pipeline only"):
        DeviceAugmentation(dataclasses.replace(cfg, pipeline="nnunet"))


def test_brats_seg_train_with_on_device_augmentation(brats2021_case, tmp_path, capsys):
    """``augment_on_device: true`` in the YAML config: the trainer augments batches after moving them."""
    from brats_seg.cli import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: unet3d\npreset: tiny\npatch: [16, 16, 16]\nepochs: 1\nsteps_per_epoch: 2\nfolds: 1\n"
                   "workers: 0\nthreads: 1\nprogress: false\naugment_on_device: true\n")
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 0
    assert "augment_on_device: true" in (tmp_path / "run" / "config.yaml").read_text()
    cfg.write_text(cfg.read_text() + "augmentation:\n  p_elastic: 0.1\n")
    assert main(["train", str(brats2021_case), "--out", str(tmp_path / "r2"), "--config", str(cfg)]) == 2
    assert "elastic" in capsys.readouterr().err
