"""Scanner-shaped augmentation: what clinical scanners do to an image that BraTS-form training data lacks.

Two transforms on one channel ``(H, W, D)`` (image only; the label is never touched):

* :func:`thick_slices`: a 2-D acquisition with thick slices along ONE axis, simulated as each slab of
  ``factor`` slices replaced by its mean (partial volume) and linearly interpolated back to the
  original slice positions along that axis only. nnU-Net's ``SimulateLowResolutionTransform``
  (Isensee et al., Nature Methods 2021) zooms every axis by one factor (nearest down, cubic up); this
  one is per axis, as a 5.5 mm clinical series (TCGA-FG-6692) is thick along one axis and sharp
  in-plane. The other two axes are not changed at all (tests/data/test_scanner_augment.py).
* :func:`bias_field`: a smooth multiplicative field ``exp(sum c_ijk x^i y^j z^k)`` (degree 3, as
  MONAI's ``RandBiasField`` and TorchIO's ``RandomBiasField`` draw it, coefficients uniform in
  ``[-coefficient, coefficient]``) — a receive-coil shading that z-scoring does not remove.

:class:`ScannerAugmentation` draws them (``AugmentConfig.p_thick_slices``, ``thick_slice_factor``,
``p_bias_field``, ``bias_field_coefficient``) and runs after either pipeline's own transforms;
with both probabilities 0 (the default) it is not added and draws no random numbers.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F


def thick_slices(x: torch.Tensor, axis: int, factor: int) -> torch.Tensor:
    """One channel ``(H, W, D)``: slabs of ``factor`` slices along ``axis`` averaged, then linearly
    interpolated back along ``axis`` only; the same shape. ``factor`` 1 returns ``x`` unchanged."""
    if factor <= 1:
        return x
    moved = x.movedim(axis, -1)  # (a, b, n)
    n = moved.shape[-1]
    slabs = -(-n // factor)
    pad = slabs * factor - n
    # a last partial slab is averaged with its last slice repeated
    padded = torch.cat([moved, moved[..., -1:].expand(*moved.shape[:-1], pad)], -1) if pad else moved
    means = padded.reshape(*moved.shape[:-1], slabs, factor).mean(-1)  # (a, b, slabs)
    # slab centres at (k + 0.5) * factor - 0.5 in slice coordinates: "align_corners=False" over the slabs
    up = F.interpolate(means.reshape(1, -1, slabs), size=slabs * factor, mode="linear", align_corners=False)
    return up.reshape(*moved.shape[:-1], slabs * factor)[..., :n].movedim(-1, axis).contiguous()


def bias_field(shape, coefficients: np.ndarray) -> torch.Tensor:
    """``(H, W, D)`` field ``exp(sum_{i+j+k<=3} c * x^i y^j z^k)`` on coordinates in [-1, 1]; ``coefficients``
    one per term of :func:`bias_terms` (all 0: a field of ones)."""
    axes = [torch.linspace(-1.0, 1.0, int(n)) for n in shape]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    log = torch.zeros(tuple(int(n) for n in shape))
    for c, (i, j, k) in zip(coefficients, bias_terms()):
        log += float(c) * x**i * y**j * z**k
    return torch.exp(log)


def bias_terms(degree: int = 3) -> list[tuple[int, int, int]]:
    """The polynomial's exponents ``(i, j, k)`` with ``i + j + k <= degree`` (20 for degree 3)."""
    return [t for t in itertools.product(range(degree + 1), repeat=3) if sum(t) <= degree]


class ScannerAugmentation:
    """``{"image": (C, *S), ...}`` -> the same dict with thick slices and/or a bias field drawn per channel.

    Seeded by :meth:`set_random_state` like MONAI transforms (the loader seeds each sample)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.R = np.random.RandomState()

    def set_random_state(self, seed=None, state=None):
        self.R = state if state is not None else np.random.RandomState(seed)
        return self

    def __call__(self, data: dict) -> dict:
        cfg, rng = self.cfg, self.R
        image = torch.as_tensor(data["image"]).float().clone()
        for c in range(image.shape[0]):
            if cfg.p_thick_slices > 0 and rng.uniform() < cfg.p_thick_slices:
                factor = int(rng.randint(int(cfg.thick_slice_factor[0]), int(cfg.thick_slice_factor[1]) + 1))
                image[c] = thick_slices(image[c], int(rng.randint(3)), factor)
            if cfg.p_bias_field > 0 and rng.uniform() < cfg.p_bias_field:
                coeffs = rng.uniform(-cfg.bias_field_coefficient, cfg.bias_field_coefficient, len(bias_terms()))
                image[c] = image[c] * bias_field(image.shape[1:], coeffs)
        return {**data, "image": image}
