"""Training augmentation of whole batches on the device (GPU), the recipe of :mod:`.pipelines`.

At 128^3, MONAI's per-sample CPU transforms cost about 0.65 s per patch per core, so a
GPU trainer on a few cores waits for data. :class:`DeviceAugmentation` applies the same
recipe to a batch ``image (B, C, *P)``, ``regions (B, 3, *P)`` already on the device,
in the same order and with the same probabilities and ranges (:class:`AugmentConfig`):

* rotation (each axis uniform in +/- ``rotate_degrees``) and scaling, in one resampling
  (``affine_grid``/``grid_sample``: trilinear for the image, nearest for the regions, zeros
  outside), fired with probability ``1 - (1 - p_rotate)(1 - p_scale)`` as on the CPU path;
  the scale is one factor for all axes drawn from ``scale_range`` (nnU-Net's default; the
  CPU path's MONAI call draws one per axis);
* Gaussian noise (std uniform in [0, ``noise_std``]), Gaussian blur (sigma per axis uniform
  in ``blur_sigma``, kernel truncated at 4 sigma as MONAI's), brightness (one factor per
  sample), additive shift, gamma with retained mean and standard deviation (over the whole
  sample, as MONAI's ``RandAdjustContrast``);
* mirroring along each axis with probability ``p_flip``, image and regions together.

Regions are resampled as the label would be (nearest neighbour picks one source voxel for
all three channels), so they stay binary and nested. Random draws come from a NumPy
generator seeded per batch (:func:`augment_batches`): the same seed gives the same
parameters on any device. Elastic deformation is not done here; a config that asks for it
is refused (:class:`ConfigError`) rather than silently skipped. Channels a batch marks as dropped
(``"present"``, modality dropout) are set back to the missing value after augmentation, as the
CPU path does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ..subsets import drop_channels
from .augment_config import AugmentConfig


def _rotation(angles: np.ndarray) -> np.ndarray:
    """3x3 rotation about the three axes (radians), composed x then y then z."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, int(math.ceil(4.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigmas: tuple[float, float, float]) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` ``(C, *S)`` (each channel alone), zero padding."""
    c = x.shape[0]
    out = x[None]
    for axis, sigma in enumerate(sigmas):
        k = _gaussian_kernel(sigma, x.device)
        shape = [1, 1, 1]
        shape[axis] = k.numel()
        weight = k.reshape(1, 1, *shape).expand(c, 1, *shape)
        pad = [0, 0, 0]
        pad[axis] = k.numel() // 2
        out = F.conv3d(out, weight, padding=tuple(pad), groups=c)
    return out[0]


class DeviceAugmentation:
    """``(image (B, C, *P) float, regions (B, 3, *P) float, rng) -> (image, regions)`` on their device."""

    def __init__(self, cfg: AugmentConfig | None = None):
        self.cfg = cfg or AugmentConfig()
        if self.cfg.p_elastic > 0:
            raise ConfigError("elastic deformation is not available in on-device augmentation; set"
                              " augmentation.p_elastic to 0 or augment on the CPU")
        if self.cfg.p_thick_slices > 0 or self.cfg.p_bias_field > 0:
            raise ConfigError("thick slices and bias fields are not available in on-device augmentation; set"
                              " augmentation.p_thick_slices and p_bias_field to 0 or augment on the CPU")
        if self.cfg.pipeline != "monai":
            raise ConfigError(f"on-device augmentation runs the 'monai' pipeline only, not"
                              f" {self.cfg.pipeline!r}; set augmentation.pipeline to monai or augment on the CPU")
        self.p_spatial = 1.0 - (1.0 - self.cfg.p_rotate) * (1.0 - self.cfg.p_scale)

    def __call__(self, image: torch.Tensor, regions: torch.Tensor,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        image, regions = image.float().clone(), regions.clone()
        fired = rng.random(image.shape[0]) < self.p_spatial
        if fired.any():
            image, regions = self._spatial(image, regions, np.flatnonzero(fired), rng)
        for b in range(image.shape[0]):
            image[b] = self._intensity(image[b], rng)
        for b in range(image.shape[0]):
            axes = [a + 1 for a in range(3) if rng.random() < self.cfg.p_flip]
            if axes:
                image[b], regions[b] = image[b].flip(axes), regions[b].flip(axes)
        return image, regions

    def _spatial(self, image, regions, index, rng):
        """Rotate and scale the samples ``index`` about the patch centre."""
        cfg, spatial = self.cfg, image.shape[2:]
        rad = math.radians(cfg.rotate_degrees)
        thetas = []
        for _ in index:
            m = _rotation(rng.uniform(-rad, rad, 3)) * rng.uniform(*cfg.scale_range)
            m = m[::-1, ::-1]  # our axes (H, W, D) -> grid order (D, W, H)
            half = np.asarray(spatial[::-1], dtype=np.float64) / 2
            thetas.append(np.concatenate([(m * half[None, :]) / half[:, None], np.zeros((3, 1))], axis=1))
        theta = torch.as_tensor(np.stack(thetas), dtype=torch.float32, device=image.device)
        grid = F.affine_grid(theta, [len(index), 1, *spatial], align_corners=False)
        idx = torch.as_tensor(index, device=image.device)
        image[idx] = F.grid_sample(image[idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        regions[idx] = F.grid_sample(regions[idx].float(), grid, mode="nearest", padding_mode="zeros",
                                     align_corners=False).to(regions.dtype)
        return image, regions

    def _intensity(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Noise, blur, brightness, shift, gamma on one sample ``(C, *P)``, each by its probability."""
        cfg = self.cfg
        if rng.random() < cfg.p_noise:
            gen = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**31)))
            x = x + torch.randn(x.shape, generator=gen, device=x.device) * rng.uniform(0, cfg.noise_std)
        if rng.random() < cfg.p_blur:
            x = gaussian_blur(x, tuple(rng.uniform(*cfg.blur_sigma, 3)))
        if rng.random() < cfg.p_brightness:
            x = x * rng.uniform(*cfg.brightness_range)
        if rng.random() < cfg.p_shift:
            x = x + rng.uniform(-cfg.shift_offset, cfg.shift_offset)
        if rng.random() < cfg.p_gamma:
            mean, std = x.mean(), x.std()
            lo, span = x.min(), x.max() - x.min()
            x = ((x - lo) / (span + 1e-7)) ** rng.uniform(*cfg.gamma_range) * span + lo
            x = (x - x.mean()) / (x.std() + 1e-8) * std + mean
        return x


def augment_batches(batches: Iterable[dict], augmentation: DeviceAugmentation, device: torch.device, *,
                    seed: int = 0, epoch: int = 0) -> Iterator[dict]:
    """Move each batch ``{"image", "label" (regions)}`` to ``device`` and augment it there; batch ``i``
    of ``epoch`` draws from ``numpy.random.default_rng([seed, epoch, i])`` (reproducible, resumable)."""
    for i, batch in enumerate(batches):
        rng = np.random.default_rng([seed, epoch, i])
        image = batch["image"].to(device, non_blocking=True)
        regions = batch["label"].to(device, non_blocking=True)
        image, regions = augmentation(image, regions, rng)
        if "present" in batch:
            drop_channels(image, batch["present"].to(device))
        yield {**batch, "image": image, "label": regions}
