"""Training augmentation for 3-D patches: one :class:`AugmentConfig`, two pipelines.

``pipeline: monai`` (the default) composes MONAI's random transforms: rotation and
scaling in one ``RandAffined`` on the patch itself, Gaussian noise, Gaussian blur,
multiplicative brightness (``RandScaleIntensityd``), an additive intensity shift,
gamma (``RandAdjustContrastd``, retained statistics), mirroring, and on request
elastic deformation, nnU-Net's contrast transform (``RandScaleIntensityFixedMeand``),
low-resolution simulation and inverted gamma. Its default probabilities are
nnU-Net's (rotation 0.2 at +-30 degrees, scaling 0.2 at 0.7-1.4, noise 0.1, blur 0.2,
brightness 0.15, gamma 0.3, mirroring 0.5 per axis), but it is *not* nnU-Net v2's
augmentation: it samples no larger crop (rotation brings zero padding into the patch
corners), draws one anisotropic scale per axis and one intensity factor for all
channels, resamples the label by nearest neighbour, adds an intensity shift nnU-Net
has not, and leaves contrast, low resolution and inverted gamma off.

``pipeline: nnunet`` is nnU-Net v2's training augmentation
(``nnUNetTrainer.get_training_transforms``), see :mod:`brats_seg.data.augmentation.nnunet_augment`
for what it does and where it differs. ``brats-seg train --recipe nnunet`` selects it
with nnU-Net's probabilities.

Elastic deformation is off by default in both, as in nnU-Net v2; only the ``monai``
pipeline has it (MONAI's ``Rand3DElasticd``, about 1.6 s per 128^3 patch on one core,
more than all other transforms together).

Scanner-shaped options (:mod:`brats_seg.data.augmentation.scanner_augment`: thick slices along one axis, a
bias field) follow either pipeline when their probabilities are above 0 (default 0: off).

Each sample is a dict ``{"image": (C, *crop) float32 tensor, "label": (1, *crop)
float tensor of label values}``; the pipeline returns ``image`` ``(C, *patch)`` and
``label`` ``(1, *patch)`` with label values only (never interpolated values). Regions
are formed after augmentation (see :mod:`brats_seg.data.loaders`). ``crop`` is
:func:`augmentation_input_size` (the patch itself for ``monai``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...errors import ConfigError
from .augment_config import AugmentConfig


class _WithScanner:
    """A pipeline followed by :class:`~.scanner_augment.ScannerAugmentation`, seeded together."""

    def __init__(self, first, scanner):
        self.first, self.scanner = first, scanner

    def set_random_state(self, seed=None, state=None):
        self.first.set_random_state(seed=seed, state=state)
        self.scanner.set_random_state(seed=None if seed is None else (int(seed) + 1) % 2**31, state=state)
        return self

    def __getattr__(self, name):  # draw_crop_size and the like: the first pipeline's
        if name in ("first", "scanner"):  # not yet set (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.first, name)

    def __call__(self, data: dict) -> dict:
        return self.scanner(self.first(data))


def _build_monai(cfg: AugmentConfig, patch_size: Sequence[int] | None = None):
    """MONAI ``Compose`` over keys ``image`` and ``label`` (``patch_size`` unused: it works on the patch)."""
    from monai.transforms import (
        Compose,
        Rand3DElasticd,
        RandAdjustContrastd,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandScaleIntensityFixedMeand,
        RandShiftIntensityd,
        RandSimulateLowResolutiond,
    )

    keys = ("image", "label")
    modes = ("bilinear", "nearest")
    rad = math.radians(cfg.rotate_degrees)
    lo, hi = cfg.scale_range
    transforms = []
    # rotation and scaling in one resampling; MONAI draws both whenever it fires, so the
    # firing probability is that of either (1 - (1 - 0.2)^2 = 0.36, as nnU-Net's separate draws).
    # One (min, max) pair per axis: MONAI adds 1, so each axis scales by uniform(lo, hi).
    p_spatial = 1.0 - (1.0 - cfg.p_rotate) * (1.0 - cfg.p_scale)
    if p_spatial > 0:
        transforms.append(RandAffined(
            keys, prob=p_spatial, rotate_range=(rad, rad, rad), scale_range=((lo - 1.0, hi - 1.0),) * 3,
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
    # appended only when on, so that the default pipeline draws exactly the random numbers it always drew
    if cfg.p_contrast > 0:
        transforms.append(RandScaleIntensityFixedMeand(
            "image", prob=cfg.p_contrast, factors=(cfg.contrast_range[0] - 1.0, cfg.contrast_range[1] - 1.0),
            fixed_mean=True, preserve_range=True))
    if cfg.p_lowres > 0:
        transforms.append(RandSimulateLowResolutiond("image", prob=cfg.p_lowres, zoom_range=cfg.lowres_zoom))
    if cfg.p_gamma_inverted > 0:
        transforms.append(RandAdjustContrastd("image", prob=cfg.p_gamma_inverted, gamma=cfg.gamma_range,
                                              invert_image=True, retain_stats=True))
    transforms += [RandFlipd(keys, prob=cfg.p_flip, spatial_axis=axis) for axis in range(3)]
    return Compose(transforms)


def _build_nnunet(cfg: AugmentConfig, patch_size: Sequence[int] | None = None):
    from .nnunet_augment import NnUNetAugmentation

    if patch_size is None:
        raise ConfigError("augmentation pipeline 'nnunet' needs the patch size (it crops the patch itself)")
    return NnUNetAugmentation(cfg, patch_size)


def _nnunet_input_size(cfg: AugmentConfig, patch_size: Sequence[int]) -> tuple[int, ...]:
    from .nnunet_augment import initial_patch_size

    return initial_patch_size(patch_size, cfg.rotate_degrees)


@dataclass(frozen=True)
class Pipeline:
    """An augmentation pipeline: its builder, and the crop it needs to produce one patch."""

    build: Callable
    input_size: Callable[[AugmentConfig, Sequence[int]], tuple[int, ...]]
    unsupported: tuple[str, ...] = ()
    """Probabilities that must stay 0 with this pipeline (it has no such transform)."""


PIPELINES: dict[str, Pipeline] = {
    "monai": Pipeline(_build_monai, lambda cfg, patch: tuple(int(p) for p in patch)),
    "nnunet": Pipeline(_build_nnunet, _nnunet_input_size, unsupported=("p_elastic",)),
}
"""Pipeline name -> :class:`Pipeline` (``AugmentConfig.pipeline``)."""


def check_augmentation(cfg: AugmentConfig) -> None:
    """Raise :class:`ConfigError` (one line) for an augmentation setting that cannot work."""
    if cfg.pipeline not in PIPELINES:
        raise ConfigError(f"unknown augmentation pipeline {cfg.pipeline!r}; valid: {', '.join(PIPELINES)}")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name.startswith("p_") and not 0 <= value <= 1:
            raise ConfigError(f"augmentation.{f.name} must be in [0, 1], got {value}")
        if isinstance(value, tuple) and not value[0] <= value[1]:
            raise ConfigError(f"augmentation.{f.name} must be (low, high) with low <= high, got {list(value)}")
    for name in PIPELINES[cfg.pipeline].unsupported:
        if getattr(cfg, name) > 0:
            raise ConfigError(f"augmentation.{name}: pipeline {cfg.pipeline!r} has no such transform; set it to 0")
    if cfg.thick_slice_factor[0] < 1 or cfg.bias_field_coefficient < 0:
        raise ConfigError("augmentation.thick_slice_factor must be at least 1 and bias_field_coefficient >= 0, got"
                          f" {list(cfg.thick_slice_factor)} and {cfg.bias_field_coefficient}")
    if cfg.pipeline == "nnunet":
        for name in ("brightness_range", "contrast_range", "gamma_range"):
            lo, hi = getattr(cfg, name)
            if not lo <= 1 <= hi:
                raise ConfigError(f"augmentation.{name} must contain 1 with pipeline 'nnunet' (it draws below and"
                                  f" above 1 with equal probability), got {[lo, hi]}")


def build_augmentation(cfg: AugmentConfig | None = None, patch_size: Sequence[int] | None = None):
    """The augmentation of ``cfg`` (default :class:`AugmentConfig`): a callable on ``{"image", "label"}`` dicts
    that turns a crop of :func:`augmentation_input_size` into a patch of ``patch_size``.

    Seed it per sample with ``transform.set_random_state(seed=...)`` for
    reproducible patches (the loader does).
    """
    cfg = cfg or AugmentConfig()
    check_augmentation(cfg)
    pipeline = PIPELINES[cfg.pipeline].build(cfg, patch_size)
    if cfg.p_thick_slices > 0 or cfg.p_bias_field > 0:
        from .scanner_augment import ScannerAugmentation

        pipeline = _WithScanner(pipeline, ScannerAugmentation(cfg))
    return pipeline


def augmentation_input_size(cfg: AugmentConfig | None, patch_size: Sequence[int]) -> tuple[int, ...]:
    """Size of the crop the augmentation turns into one ``patch_size`` patch (larger for ``nnunet``)."""
    if cfg is None:
        return tuple(int(p) for p in patch_size)
    return PIPELINES[cfg.pipeline].input_size(cfg, patch_size)


def sample_crop_size(augmentation, patch_size: Sequence[int]) -> tuple[int, ...]:
    """The crop one sample needs, drawn after seeding ``augmentation``: the patch, unless the augmentation draws
    a transform that needs more (``draw_crop_size``: the ``nnunet`` pipeline's rotation or scaling)."""
    draw = getattr(augmentation, "draw_crop_size", None)
    return tuple(draw()) if draw is not None else tuple(int(p) for p in patch_size)
