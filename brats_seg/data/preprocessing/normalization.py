"""Per-channel intensity normalizers, as small named classes in a registry.

Modelled on nnU-Net's ``default_normalization_schemes`` (a name -> class dict)
and TorchIO's ``ZNormalization`` (which refuses a zero standard deviation
instead of silently dividing by it). Each normalizer maps one channel
``(H, W, D)`` and a brain mask ``(H, W, D)`` bool to a float32 array of the same
shape that is 0 outside the mask.

================  ============================================================
``zscore``        (x - mean) / std, statistics inside the brain mask
``percentile``    clip to percentiles inside the brain, then scale to [0, 1]
``none``          raw intensities as float32
``nnunet_zscore_mask``  nnU-Net v2's ``ZScoreNormalization`` with ``use_mask_for_norm``
``nnunet_zscore``       nnU-Net v2's ``ZScoreNormalization`` without the mask
``monai_nonzero_channelwise``  MONAI's ``NormalizeIntensity(nonzero=True, channel_wise=True)`` (bundles)
================  ============================================================

The two ``nnunet_*`` normalizers are for models imported from nnU-Net (:mod:`brats_seg.importers`)
and follow its rules, not ours: the mask is the nonzero mask with holes filled, statistics are
float32 numpy means, the std is floored at 1e-8 instead of refused, and preprocessing normalizes
before resampling (``before_resampling``), as nnU-Net does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...errors import BratsSegError, ConfigError


class Normalizer:
    """Base class: ``normalizer(x, mask, channel=...) -> float32`` of ``x``'s shape."""

    name = "base"

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        raise NotImplementedError

    def _brain(self, x: np.ndarray, mask: np.ndarray, channel: str) -> np.ndarray:
        values = x[mask]
        if values.size == 0:
            raise BratsSegError(f"channel {channel}: empty brain mask, nothing to normalize")
        return values.astype(np.float64)


class ZScoreNormalizer(Normalizer):
    """Zero mean, unit standard deviation inside the brain mask; 0 outside.

    Statistics come from brain voxels only: BraTS scans are skull-stripped, so the
    zero background fills 60-80 % of the grid and would otherwise dominate the mean
    and std (and vary with head size rather than with the scanner's contrast), which
    is why nnU-Net uses the nonzero mask for MRI z-scoring.
    """

    name = "zscore"

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        values = self._brain(x, mask, channel)
        mean, std = float(values.mean()), float(values.std())
        if not np.isfinite(std) or std <= 1e-8 * max(1.0, abs(mean)):
            raise BratsSegError(
                f"channel {channel}: constant inside the brain mask (value {mean:g}, std 0); cannot z-score it"
            )
        out = (x.astype(np.float32) - np.float32(mean)) * np.float32(1.0 / std)
        out[~mask] = 0.0
        return out


class PercentileNormalizer(Normalizer):
    """Clip to the ``percentiles`` of brain intensities, then scale linearly to [0, 1]; 0 outside."""

    name = "percentile"

    def __init__(self, percentiles: tuple[float, float] = (0.5, 99.5)):
        lo, hi = (float(p) for p in percentiles)
        if not 0.0 <= lo < hi <= 100.0:
            raise ConfigError(f"clip_percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
        self.percentiles = (lo, hi)

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        values = self._brain(x, mask, channel)
        lo, hi = (float(v) for v in np.percentile(values, self.percentiles))
        if hi - lo <= 1e-8 * max(1.0, abs(lo)):
            raise BratsSegError(
                f"channel {channel}: percentiles {self.percentiles} of the brain are equal ({lo:g});"
                " cannot scale to [0, 1]"
            )
        out = (np.clip(x.astype(np.float32), lo, hi) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
        np.clip(out, 0.0, 1.0, out=out)  # float32 rounding can overshoot 1 by an ulp
        out[~mask] = 0.0
        return out


class NoNormalizer(Normalizer):
    """Raw intensities, as float32 (background untouched)."""

    name = "none"

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        return x.astype(np.float32, copy=True)


class NNUNetZScoreNormalizer(Normalizer):
    """nnU-Net v2's z-score: inside ``mask`` (holes of the nonzero mask filled) ``(x - mean) / max(std, 1e-8)``,
    statistics in float32 over the mask; voxels outside keep their value (0: they are outside the nonzero mask)."""

    name = "nnunet_zscore_mask"
    before_resampling = True
    use_mask = True

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        image = x.astype(np.float32, copy=True)
        if self.use_mask:
            values = image[mask]
            mean, std = values.mean(), values.std()
            image[mask] = (values - mean) / max(std, 1e-8)
            return image
        mean, std = image.mean(), image.std()
        image -= mean
        image /= max(std, 1e-8)
        return image


class NNUNetZScoreNoMaskNormalizer(NNUNetZScoreNormalizer):
    """nnU-Net v2's z-score without ``use_mask_for_norm``: statistics over the whole cropped box."""

    name = "nnunet_zscore"
    use_mask = False


class MonaiNonzeroChannelwiseNormalizer(Normalizer):
    """MONAI's ``NormalizeIntensity(nonzero=True, channel_wise=True)``: each channel's nonzero voxels
    ``(x - mean) / std`` (float32, population std; a zero std divides by 1), zeros kept; ``mask`` unused."""

    name = "monai_nonzero_channelwise"

    def __call__(self, x: np.ndarray, mask: np.ndarray, *, channel: str = "channel") -> np.ndarray:
        image = x.astype(np.float32, copy=True)
        nonzero = image != 0
        if nonzero.any():
            values = image[nonzero]
            std = values.std()
            image[nonzero] = (values - values.mean()) / (std if std != 0 else np.float32(1.0))
        return image


NORMALIZERS: Mapping[str, type[Normalizer]] = {
    cls.name: cls for cls in (ZScoreNormalizer, PercentileNormalizer, NoNormalizer, NNUNetZScoreNormalizer,
                              NNUNetZScoreNoMaskNormalizer, MonaiNonzeroChannelwiseNormalizer)
}
"""Registry: normalization name -> class."""


def get_normalizer(name: str, *, clip_percentiles: tuple[float, float] = (0.5, 99.5)) -> Normalizer:
    """Instantiate the normalizer registered as ``name``; an unknown name lists the valid ones."""
    try:
        cls = NORMALIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown normalization {name!r}; valid: {', '.join(NORMALIZERS)}") from None
    return cls(clip_percentiles) if cls is PercentileNormalizer else cls()


def intensity_window(image: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5), *,
                     positive_only: bool = False, min_width: float = 1.0) -> tuple[float, float]:
    """The display window ``(lo, hi)`` of an image: percentiles of its foreground voxels (nonzero, or
    ``positive_only`` above zero), ``min_width`` wide where they coincide; ``(0, 1)`` for an empty image. The one
    window helper of the overlays (:mod:`brats_seg.evaluation.overlays`) and the QC pictures
    (:mod:`brats_seg.prepare.qc`), each with its own percentiles."""
    values = image[image > 0] if positive_only else image[image != 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(hi if hi > lo else lo + min_width)
