"""A plain port of DeepMind's surface-distance method, as BraTS-2023-Metrics runs it per lesion: the oracle
for :mod:`brats_seg.evaluation.distances` (surfels) and the lesion-wise HD95.

Written from the description of the algorithm (``compute_surface_distances`` + ``compute_robust_hausdorff``),
straightforwardly and independently of the library code: the 2x2x2 neighbour codes by ``ndimage.correlate``
on the box padded at its far end, both distance maps by Euclidean distance transforms, the surfel areas
from MONAI's copy of DeepMind's normals table (the library takes them from the ``surface-distance``
package), Python's ``sorted`` over (distance, area) pairs, and the area-weighted percentile by a cumulative
sum and ``searchsorted``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

KERNEL = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])


def area_table(spacing) -> np.ndarray:
    """Code -> area: the norm of each triangle's normal scaled by the spacing, summed triangle by triangle."""
    from monai.metrics.utils import _get_neighbour_code_to_normals_table

    normals = _get_neighbour_code_to_normals_table().numpy().astype(np.float64)
    sx, sy, sz = spacing
    table = np.zeros(256)
    for code in range(256):
        total = 0.0
        for n in normals[code]:
            if np.any(n):
                total += np.linalg.norm([n[0] * sy * sz, n[1] * sx * sz, n[2] * sx * sy])
        table[code] = total
    return table


def surface_distances(gt: np.ndarray, pred: np.ndarray, spacing) -> dict[str, np.ndarray]:
    """DeepMind's ``compute_surface_distances`` for two non-empty 3-D masks."""
    both = np.argwhere(gt | pred)
    lo, hi = both.min(0), both.max(0)
    box = tuple(slice(a, b + 1) for a, b in zip(lo, hi))
    out = {}
    codes = {}
    for name, mask in (("gt", gt), ("pred", pred)):
        crop = np.zeros(hi - lo + 2, np.uint8)
        crop[:-1, :-1, :-1] = mask[box]
        codes[name] = ndimage.correlate(crop, KERNEL, mode="constant", cval=0)
    borders = {k: (c != 0) & (c != 255) for k, c in codes.items()}
    dist = {k: ndimage.distance_transform_edt(~b, sampling=spacing) for k, b in borders.items()}
    table = area_table(spacing)
    for src, dst in (("gt", "pred"), ("pred", "gt")):
        pairs = sorted(zip(dist[dst][borders[src]], table[codes[src][borders[src]]]))
        out[f"distances_{src}_to_{dst}"] = np.array([d for d, _ in pairs])
        out[f"surfel_areas_{src}"] = np.array([a for _, a in pairs])
    return out


def robust_hausdorff(sd: dict[str, np.ndarray], percent: float) -> float:
    """DeepMind's ``compute_robust_hausdorff``: the larger directed area-weighted percentile."""
    values = []
    for d, a in ((sd["distances_gt_to_pred"], sd["surfel_areas_gt"]),
                 (sd["distances_pred_to_gt"], sd["surfel_areas_pred"])):
        cum = np.cumsum(a) / np.sum(a)
        values.append(d[min(np.searchsorted(cum, percent / 100.0), len(d) - 1)])
    return float(max(values))


def hd95(pred: np.ndarray, gt: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> float:
    return robust_hausdorff(surface_distances(gt, pred, spacing), 95)
