"""A reference brain mask for a healthy whole-head T1 that no brain-extraction back-end made.

There is no expert mask for the shared healthy head. This reference is brain TISSUE found by
intensity and morphology alone: Gaussian smoothing (1 voxel), Otsu's threshold over the head
(tissue vs CSF and bone), a 4-voxel (3.5 mm) erosion that cuts the bridges to scalp, eyes and
neck, the largest component, dilation back inside the tissue, a 4-voxel closing, holes filled.
By construction it holds no CSF outside the brain, which brain-extraction tools include (as do
BraTS masks): a right mask contains almost all of it (sensitivity near 1) and is 10-15 % larger,
so Dice about 0.92-0.94 is the best a tool can score against it (deepbet and ROBEX, which agree
with each other at Dice 0.97 on this head, score 0.93 and 0.92). Used by the tests and by
benchmarks/bench_prepare.py."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _ball(radius: int) -> np.ndarray:
    g = np.indices((2 * radius + 1,) * 3) - radius
    return (g ** 2).sum(0) <= radius * radius


def otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w = np.cumsum(hist)
    m = np.cumsum(hist * centres)
    between = (m[-1] * w - m * w[-1]) ** 2 / (w * (w[-1] - w) + 1e-9)
    return float(centres[np.argmax(between)])


def tissue_reference(volume: np.ndarray, radius: int = 4) -> np.ndarray:
    """``(X, Y, Z)`` T1 with skull -> bool brain-tissue mask (see the module docstring)."""
    smooth = ndi.gaussian_filter(volume.astype(np.float32), 1.0)
    head = smooth > 0.1 * np.percentile(smooth, 99)
    tissue = smooth > otsu(smooth[head])
    core = ndi.binary_erosion(tissue, _ball(radius))
    labels, _ = ndi.label(core)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    brain = ndi.binary_dilation(labels == sizes.argmax(), _ball(radius)) & tissue
    return ndi.binary_fill_holes(ndi.binary_closing(brain, _ball(radius)))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
