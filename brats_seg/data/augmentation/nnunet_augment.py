"""nnU-Net v2's training augmentation on MONAI and torch (``AugmentConfig(pipeline="nnunet")``).

Follows ``nnUNetTrainer.get_training_transforms`` (nnU-Net v2, batchgeneratorsv2
transforms) for a 3-D BraTS patch, in its order and with the probabilities of
:class:`~brats_seg.data.augmentation.augment_config.AugmentConfig` (``--recipe nnunet`` sets nnU-Net's):

1. **Rotation and scaling on a larger crop.** The loader cuts a crop of
   :func:`initial_patch_size` (206^3 for a 128^3 patch: nnU-Net's ``get_patch_size``
   for +-30 degrees and scale 0.85, 205, rounded up to the patch's parity so the patch
   sits on whole voxels); with p 0.2 three angles in +-30 degrees, with p 0.2 one
   isotropic scale in 0.7-1.4 (>1 shrinks objects); if either fires, MONAI ``Affine``
   resamples the centre of the crop to the patch (so rotation brings in no padding),
   otherwise the patch is the crop's centre, not interpolated. The label is resampled
   as nnU-Net does: each label's indicator linearly, then the arg-max.
2. Gaussian noise (p 0.1): one noise field, std drawn in [0, 0.1], added to every
   channel (nnU-Net ``synchronize_channels=True``; MONAI's ``RandGaussianNoise`` draws a
   field per channel).
3. Gaussian blur (p 0.2): each channel with p 0.5, its own sigma per axis in 0.5-1;
   MONAI's separable filter with reflect padding and nnU-Net's kernel width (+-3 sigma);
   MONAI's ``RandGaussianSmooth`` blurs all channels alike with zero padding.
4. Multiplicative brightness (p 0.15): each channel by its own factor in 0.75-1.25.
5. Contrast (p 0.15): each channel ``(x - mean) * f + mean`` clipped to its former range
   (``preserve_range``), its own ``f`` in 0.75-1.25: MONAI ``ScaleIntensityFixedMean``
   per channel (MONAI's random version draws one factor for all channels).
6. Low resolution (p 0.25): each channel with p 0.5 downsampled by its own zoom in
   0.5-1 (nearest-exact), then upsampled back (trilinear); MONAI's
   ``RandSimulateLowResolution`` draws one zoom for all channels.
7. Inverted gamma (p 0.1), then gamma (p 0.3): each channel its own gamma, retained
   mean and std; MONAI ``AdjustContrast`` per channel (``RandAdjustContrast`` would use
   one gamma and the min/max of all channels together).
8. Mirroring, each axis with p 0.5.
9. Background reset: voxels outside the brain (zero in every channel of the crop, as
   preprocessing leaves them) are set back to 0, as nnU-Net's ``MaskImageTransform``
   does for channels z-scored inside the brain mask.

Multiplicative factors are drawn as nnU-Net's ``BGContrast``: below or above 1 with
probability 1/2 each, uniformly within that side. ``p_shift`` adds MONAI-style one
intensity offset to all channels (nnU-Net has no such transform; the recipe leaves it 0).
Not done: elastic deformation (off in nnU-Net v2), nnU-Net's nearest-neighbour
tie-break where two labels' interpolated indicators are exactly equal (ours keeps the
first), and its half-voxel shift from an odd crop around an even patch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import Randomizable

from .augment_config import AugmentConfig
from .metatensor import plain_tensor

P_CHANNEL_BLUR = 0.5
"""nnU-Net's probability that blur touches one channel (``GaussianBlurTransform(p_per_channel=0.5)``)."""
P_CHANNEL_LOWRES = 0.5
"""nnU-Net's probability that low-resolution simulation touches one channel."""
OUTSIDE = -1
"""Label value of voxels outside the brain while the sample is augmented (nnU-Net's -1)."""


def initial_patch_size(patch_size: Sequence[int], rotate_degrees: float, min_scale: float = 0.85) -> tuple[int, ...]:
    """The crop from which rotation and scaling cut a ``patch_size`` patch without padding.

    nnU-Net's ``get_patch_size``: the largest extent of the patch's size vector rotated
    about each axis alone by up to ``rotate_degrees`` (at most 90), divided by
    ``min_scale`` (nnU-Net uses 0.85, not the 0.7 it augments with), truncated; then
    rounded up to the parity of each patch side so the patch is centred on whole voxels.
    """
    rad = min(math.radians(abs(rotate_degrees)), math.pi / 2)
    c, s = math.cos(rad), math.sin(rad)
    size = np.asarray(patch_size, dtype=np.float64)
    rotations = (np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
                 np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]))
    extent = size.copy()
    for rot in rotations:
        extent = np.maximum(extent, np.abs(size @ rot))  # batchgenerators' rotate_coords_3d (row vector)
    crop = (extent / min_scale).astype(int)
    return tuple(int(n + (n - p) % 2) for n, p in zip(crop, patch_size))


def bg_contrast(rng: np.random.RandomState, low: float, high: float) -> float:
    """nnU-Net's ``BGContrast``: a factor below 1 (uniform in ``[low, 1]``) or above (``[1, high]``), 1/2 each."""
    if rng.uniform() < 0.5 and low < 1:
        return float(rng.uniform(low, 1.0))
    return float(rng.uniform(max(low, 1.0), high))


# --------------------------------------------------------------------------- the transforms (pure)


def mark_outside(image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``label`` ``(1, *S)`` as float, :data:`OUTSIDE` where ``image`` ``(C, *S)`` is 0 in every channel and the
    label is background (nnU-Net's -1 outside the brain's nonzero mask)."""
    outside = label[0] == 0
    for channel in image:
        outside &= channel == 0
    return label.float().masked_fill(outside[None], OUTSIDE)


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The centre ``size`` of ``x`` ``(C, *S)``; ``S - size`` must be even (see :func:`initial_patch_size`)."""
    lo = [(n - s) // 2 for n, s in zip(x.shape[1:], size)]
    return x[(slice(None), *(slice(a, a + s) for a, s in zip(lo, size)))]


def rotate_scale(image: torch.Tensor, label: torch.Tensor, size: Sequence[int], angles: Sequence[float],
                 scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (radians about each axis) and scale (>1 shrinks objects) about the crop's centre, cutting ``size``.

    ``image`` ``(C, *S)`` trilinear, zero padding; ``label`` ``(1, *S)`` label values:
    the arg-max of each label's linearly resampled indicator, label 0 outside the crop.
    """
    from monai.transforms import Affine

    affine = Affine(rotate_params=list(angles), scale_params=[scale] * 3, spatial_size=list(size),
                    mode="bilinear", padding_mode="zeros", image_only=True)
    counts = torch.bincount((label.long() - OUTSIDE).flatten())
    values = [float(v + OUTSIDE) for v in torch.nonzero(counts).flatten().tolist() if v + OUTSIDE != 0]
    image = plain_tensor(affine(image))
    if not values:
        return image, torch.zeros((1, *size), dtype=label.dtype)
    scores = plain_tensor(affine(torch.cat([(label == v).float() for v in values])))
    background = 1.0 - scores.sum(0, keepdim=True)  # indicators partition the crop, label 0 pads it
    best = torch.cat([background, scores]).argmax(0, keepdim=True)
    return image, torch.tensor([0.0, *values], dtype=label.dtype)[best]


def gaussian_noise(image: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add one N(0, std^2) field ``(*S)`` to every channel of ``image`` ``(C, *S)``."""
    return image + torch.randn(image.shape[1:], generator=generator) * std


def gaussian_blur(x: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Blur one channel ``x`` ``(*S)`` with ``sigmas`` (voxels) per axis; reflect padding, kernel +-3 sigma."""
    from monai.networks.layers import separable_filtering
    from monai.networks.layers.convutils import gaussian_1d

    kernels = [gaussian_1d(torch.tensor(float(s)), truncated=3.0, approx="sampled", normalize=True)
               for s in sigmas]
    return separable_filtering(x[None, None], kernels, mode="reflect")[0, 0]


def contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """One channel ``(*S)``: ``(x - mean) * factor + mean``, clipped to ``x``'s former range (MONAI)."""
    from monai.transforms import ScaleIntensityFixedMean

    return plain_tensor(ScaleIntensityFixedMean(factor - 1.0, preserve_range=True, fixed_mean=True)(x[None]))[0]


def low_resolution(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """One channel ``(*S)`` downsampled to ``round(S * zoom)`` (nearest-exact) and back (trilinear)."""
    shape = x.shape
    small = [max(1, round(n * zoom)) for n in shape]
    down = F.interpolate(x[None, None], size=small, mode="nearest-exact")
    return F.interpolate(down, size=shape, mode="trilinear", align_corners=False)[0, 0]


def gamma(x: torch.Tensor, value: float, invert: bool) -> torch.Tensor:
    """One channel ``(*S)``: gamma on the range-normalized values, mean and std kept (MONAI ``AdjustContrast``);
    ``invert``: on ``-x`` (brightens what gamma > 1 darkens)."""
    from monai.transforms import AdjustContrast

    return plain_tensor(AdjustContrast(value, invert_image=invert, retain_stats=True)(x[None]))[0]


# --------------------------------------------------------------------------- the pipeline


class NnUNetAugmentation(Randomizable):
    """nnU-Net v2's augmentation: ``{"image": (C, *crop), "label": (1, *crop)}`` -> the same at ``patch_size``.

    ``crop`` is :func:`initial_patch_size`; the patch is its centre. Seed with
    :meth:`set_random_state` (the loader does, per sample).
    """

    def __init__(self, cfg: AugmentConfig, patch_size: Sequence[int]):
        self.cfg = cfg
        self.patch_size = tuple(int(p) for p in patch_size)
        self.input_size = initial_patch_size(self.patch_size, cfg.rotate_degrees)
        self._drawn: tuple[list[float], float] | None = None
        self._has_drawn = False  # draw_crop_size was called for the coming sample

    def _fires(self, p: float) -> bool:
        return self.R.uniform() < p

    def _draw_spatial(self) -> tuple[list[float], float] | None:
        """``(angles, scale)`` when rotation or scaling fires, else ``None``."""
        cfg = self.cfg
        rotate, scale = self._fires(cfg.p_rotate), self._fires(cfg.p_scale)
        if not (rotate or scale):
            return None
        rad = math.radians(cfg.rotate_degrees)
        angles = [self.R.uniform(-rad, rad) for _ in range(3)] if rotate else [0.0] * 3
        return angles, (self.R.uniform(*cfg.scale_range) if scale else 1.0)

    def draw_crop_size(self) -> tuple[int, ...]:
        """Draw this sample's rotation and scaling now (after :meth:`set_random_state`) and return the crop it
        needs: the patch itself when neither fires (64 % of samples at nnU-Net's probabilities), else
        :attr:`input_size`. The next call uses this draw; without it, the call draws for itself."""
        self._drawn, self._has_drawn = self._draw_spatial(), True
        return self.input_size if self._drawn else self.patch_size

    def _spatial(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The patch, rotated and scaled if drawn so; its label carries :data:`OUTSIDE` outside the brain."""
        drawn = self._drawn if self._has_drawn else self._draw_spatial()
        self._drawn, self._has_drawn = None, False
        if drawn is None:  # the centre, not interpolated: mark the outside on the patch only
            image = center_crop(image, self.patch_size).clone()
            return image, mark_outside(image, center_crop(label, self.patch_size))
        if tuple(image.shape[1:]) != self.input_size:
            raise ValueError(f"rotation/scaling needs a {self.input_size} crop (draw_crop_size), got {image.shape}")
        return rotate_scale(image, mark_outside(image, label), self.patch_size, *drawn)

    def _per_channel(self, image: torch.Tensor, p_channel: float, fn, draw) -> torch.Tensor:
        """``image[c] = fn(image[c], draw())`` for each channel chosen with ``p_channel``."""
        out = image.clone()
        for c in range(image.shape[0]):
            if self._fires(p_channel):
                out[c] = fn(image[c], draw())
        return out

    def _intensity(self, image: torch.Tensor) -> torch.Tensor:
        cfg, rng = self.cfg, self.R
        if self._fires(cfg.p_noise):
            generator = torch.Generator().manual_seed(int(rng.randint(2**31)))
            image = gaussian_noise(image, rng.uniform(0.0, cfg.noise_std), generator)
        if self._fires(cfg.p_blur):
            image = self._per_channel(image, P_CHANNEL_BLUR, gaussian_blur,
                                      lambda: [rng.uniform(*cfg.blur_sigma) for _ in range(3)])
        if self._fires(cfg.p_brightness):
            image = self._per_channel(image, 1.0, torch.mul, lambda: bg_contrast(rng, *cfg.brightness_range))
        if self._fires(cfg.p_shift):
            image = image + rng.uniform(-cfg.shift_offset, cfg.shift_offset)
        if self._fires(cfg.p_contrast):
            image = self._per_channel(image, 1.0, contrast, lambda: bg_contrast(rng, *cfg.contrast_range))
        if self._fires(cfg.p_lowres):
            image = self._per_channel(image, P_CHANNEL_LOWRES, low_resolution,
                                      lambda: rng.uniform(*cfg.lowres_zoom))
        for p, invert in ((cfg.p_gamma_inverted, True), (cfg.p_gamma, False)):
            if self._fires(p):
                image = self._per_channel(image, 1.0, lambda x, g, inv=invert: gamma(x, g, inv),
                                          lambda: bg_contrast(rng, *cfg.gamma_range))
        return image

    def __call__(self, data: dict) -> dict:
        image, label = self._spatial(torch.as_tensor(data["image"]).float(), torch.as_tensor(data["label"]))
        image = self._intensity(image)
        axes = [1 + a for a in range(3) if self._fires(self.cfg.p_flip)]
        if axes:
            image, label = torch.flip(image, axes), torch.flip(label, axes)
        outside = label == OUTSIDE
        return {**data, "image": image.masked_fill_(outside, 0.0), "label": label.masked_fill_(outside, 0.0)}
