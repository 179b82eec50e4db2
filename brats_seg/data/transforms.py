"""Training augmentation for 3-D patches, built from MONAI transforms.

The recipe and probabilities follow nnU-Net's default 3-D augmentation
(Isensee et al., "nnU-Net", Nature Methods 2021, supplementary note 4):
rotation (±30°, p 0.2) and scaling (0.7-1.4, p 0.2), Gaussian noise (p 0.1),
Gaussian blur (p 0.2), multiplicative brightness (p 0.15), gamma (p 0.3, with
retained statistics), mirroring along every axis (p 0.5 each), plus an additive
intensity shift (p 0.15). Elastic deformation (nnU-Net v1) is available but off by
default, as in nnU-Net v2: MONAI's ``Rand3DElasticd`` smooths a full-resolution
displacement field, about 1.6 s per 128^3 patch on one core, more than all other
transforms together (``AugmentConfig(p_elastic=0.1)`` turns it on).

Each sample is a dict ``{"image": (C, *patch) float32 tensor, "label": (1, *patch)
uint8/float tensor}``; spatial transforms resample the label with nearest
neighbour so label values survive. Regions are formed after augmentation
(see :mod:`brats_seg.data.loaders`), so only one label channel is resampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (nnU-Net defaults)."""

    p_rotate: float = 0.2
    rotate_degrees: float = 30.0
    p_scale: float = 0.2
    scale_range: tuple[float, float] = (0.7, 1.4)
    p_elastic: float = 0.0
    elastic_sigma: tuple[float, float] = (5.0, 8.0)
    elastic_magnitude: tuple[float, float] = (50.0, 150.0)
    p_noise: float = 0.1
    noise_std: float = 0.1
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    p_brightness: float = 0.15
    brightness_range: tuple[float, float] = (0.75, 1.25)
    p_shift: float = 0.15
    shift_offset: float = 0.1
    p_gamma: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    p_flip: float = 0.5


def build_augmentation(cfg: AugmentConfig | None = None):
    """A MONAI ``Compose`` over keys ``image`` and ``label`` applying ``cfg``.

    Seed it per sample with ``transform.set_random_state(seed=...)`` for
    reproducible patches (the loader does).
    """
    from monai.transforms import (
        Compose,
        Rand3DElasticd,
        RandAdjustContrastd,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )

    cfg = cfg or AugmentConfig()
    keys = ("image", "label")
    modes = ("bilinear", "nearest")
    rad = math.radians(cfg.rotate_degrees)
    lo, hi = cfg.scale_range
    transforms = []
    # rotation and scaling in one resampling; MONAI draws both whenever it fires, so the
    # firing probability is that of either (1 - (1 - 0.2)^2 = 0.36, as nnU-Net's separate draws).
    p_spatial = 1.0 - (1.0 - cfg.p_rotate) * (1.0 - cfg.p_scale)
    if p_spatial > 0:
        transforms.append(RandAffined(
            keys, prob=p_spatial, rotate_range=(rad, rad, rad), scale_range=(lo - 1.0, hi - 1.0),
            mode=modes, padding_mode="zeros",
        ))
    if cfg.p_elastic > 0:
        transforms.append(Rand3DElasticd(
            keys, sigma_range=cfg.elastic_sigma, magnitude_range=cfg.elastic_magnitude, prob=cfg.p_elastic,
            mode=modes, padding_mode="zeros",
        ))
    transforms += [
        RandGaussianNoised("image", prob=cfg.p_noise, std=cfg.noise_std),
        RandGaussianSmoothd("image", prob=cfg.p_blur, sigma_x=cfg.blur_sigma, sigma_y=cfg.blur_sigma,
                            sigma_z=cfg.blur_sigma),
        RandScaleIntensityd("image", prob=cfg.p_brightness,
                            factors=(cfg.brightness_range[0] - 1.0, cfg.brightness_range[1] - 1.0)),
        RandShiftIntensityd("image", prob=cfg.p_shift, offsets=cfg.shift_offset),
        RandAdjustContrastd("image", prob=cfg.p_gamma, gamma=cfg.gamma_range, retain_stats=True),
    ]
    transforms += [RandFlipd(keys, prob=cfg.p_flip, spatial_axis=axis) for axis in range(3)]
    return Compose(transforms)


def plain_tensor(x) -> torch.Tensor:
    """Drop MONAI's MetaTensor wrapper (its metadata is not needed for patches)."""
    if hasattr(x, "as_tensor"):
        return x.as_tensor()
    return torch.as_tensor(x)
