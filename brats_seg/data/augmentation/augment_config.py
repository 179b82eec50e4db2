"""The settings of training augmentation, read by every pipeline: :class:`AugmentConfig`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (``p_*``, 0..1) and ranges of each augmentation; ``pipeline``: ``monai`` or ``nnunet``.

    Ranges of multiplicative factors (brightness, contrast, gamma) are ``(low, high)``;
    the ``nnunet`` pipeline draws below and above 1 with equal probability, as nnU-Net's
    ``BGContrast`` does, so they must contain 1 there. ``noise_std``: the noise standard
    deviation is drawn uniformly in ``[0, noise_std]``; ``lowres_zoom``: the downsampling
    factor of the low-resolution simulation.
    """

    pipeline: str = "monai"
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
    p_contrast: float = 0.0
    contrast_range: tuple[float, float] = (0.75, 1.25)
    p_lowres: float = 0.0
    lowres_zoom: tuple[float, float] = (0.5, 1.0)
    p_gamma_inverted: float = 0.0
    p_gamma: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    p_flip: float = 0.5
    p_thick_slices: float = 0.0
    """Per channel: thick slices along one random axis (:mod:`.scanner_augment`); after either pipeline."""
    thick_slice_factor: tuple[int, int] = (2, 5)
    """Slices per slab, drawn uniformly in [low, high] (integers)."""
    p_bias_field: float = 0.0
    """Per channel: a smooth multiplicative field of degree 3 (:mod:`.scanner_augment`)."""
    bias_field_coefficient: float = 0.3
    """Its polynomial coefficients are uniform in [-this, this]."""
