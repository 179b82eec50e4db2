"""Distances between the surfaces of two masks: voxel surfaces and surface elements (surfels).

Two surfaces, two definitions the BraTS code uses:

- **voxel surfaces** (:func:`surface_distances`): the mask minus its erosion by the
  6-neighbour cross, as the official ``brats-evaluation`` package (panoptica) and
  MONAI take it; every surface voxel counts once. :mod:`.metrics` builds the
  legacy HD95 on it.
- **surfels** (:func:`surfel_distances`): DeepMind's surface-distance method
  (Nikolov et al., arXiv:1809.04430), which the BraTS 2023+ lesion-wise code
  (BraTS-2023-Metrics ``compute_surface_distances`` + ``compute_robust_hausdorff``)
  uses for every lesion. The surface is made of the 2x2x2 voxel cubes whose corners
  are neither all inside nor all outside (cube centres lie half a voxel off the
  voxel grid); each cube is weighted by the area of its marching-cubes triangles
  (DeepMind's 256-entry table from the ``surface-distance`` package, scaled by the
  spacing). A directed 95th percentile is the distance of the first surfel, sorted
  by distance then area, at which the cumulative area reaches 95 % of the total
  (:func:`area_percentile`: a step, no interpolation).

Every mask is ``(H, W, D)`` bool, every distance in mm (``spacing`` per axis).
Both computations work on the box around the two masks, and nearest distances come
from a k-d tree of the other surface's points (exact; elements on both surfaces are
at distance 0 and skip the query). DeepMind instead takes two Euclidean distance
transforms of the box and sorts with Python's ``sorted``; the values are the same
(``tests/evaluation/test_surfels.py`` checks against a plain port of that code).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from ..errors import BratsSegError

DISTANCE_METHODS: tuple[str, ...] = ("kdtree", "edt")


def as_bool(mask) -> np.ndarray:
    mask = np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise BratsSegError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")


def normalize_spacing(spacing, ndim: int) -> tuple[float, ...]:
    """``None`` (1 mm), a number, or one positive value per axis -> a tuple of ``ndim`` floats."""
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        return (float(spacing),) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise BratsSegError(f"spacing {spacing} has {len(spacing)} values for a {ndim}-D mask")
    if any(not s > 0 for s in spacing):
        raise BratsSegError(f"spacing {spacing} must be positive")
    return spacing


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every True voxel, grown by ``margin`` (clipped); None if empty."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def _nearest(a: np.ndarray, b: np.ndarray, spacing, method: str = "kdtree") -> tuple[np.ndarray, np.ndarray]:
    """Two point masks on one grid -> (distance of each point of ``a`` to the nearest of ``b``, and the
    reverse), in the order of ``np.argwhere`` for points on one surface only, common points first."""
    common = a & b
    if method == "edt":
        to_b = ndimage.distance_transform_edt(~b, sampling=spacing)
        to_a = ndimage.distance_transform_edt(~a, sampling=spacing)
        return np.concatenate([to_b[common], to_b[a & ~common]]), np.concatenate([to_a[common], to_a[b & ~common]])
    if method != "kdtree":
        raise BratsSegError(f"unknown distance method {method!r}; valid: {', '.join(DISTANCE_METHODS)}")
    from scipy.spatial import cKDTree

    scale = np.asarray(spacing, dtype=np.float64)
    n_common = int(np.count_nonzero(common))
    only_a, only_b, both = (np.argwhere(m) * scale for m in (a & ~common, b & ~common, common))
    d_a, d_b = np.zeros(n_common + len(only_a)), np.zeros(n_common + len(only_b))
    fast = {"leafsize": 32, "balanced_tree": False, "compact_nodes": False}  # ~20% faster builds, same answers
    if len(only_a):
        d_a[n_common:] = cKDTree(np.concatenate([both, only_b]), **fast).query(only_a)[0]
    if len(only_b):
        d_b[n_common:] = cKDTree(np.concatenate([both, only_a]), **fast).query(only_b)[0]
    return d_a, d_b


def _box_pair(pred_mask, ref_mask, spacing, margin: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    pred, ref = as_bool(pred_mask), as_bool(ref_mask)
    check_pair(pred, ref)
    spacing = normalize_spacing(spacing, pred.ndim)
    if not pred.any() or not ref.any():
        raise BratsSegError("surface distances need two non-empty masks")
    box = bounding_box(pred | ref, margin=margin)
    return pred[box], ref[box], spacing


# --------------------------------------------------------------------------- voxel surfaces

def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels: the mask minus its erosion by the 6-neighbour cross (outside the array counts as empty)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(pred_mask, ref_mask, spacing=None, *, method: str = "kdtree") -> tuple[np.ndarray, np.ndarray]:
    """Directed voxel-surface distances (mm) ``(ref -> pred, pred -> ref)``, in no particular order.

    The first array holds, for each reference surface voxel, the distance to the
    nearest prediction surface voxel; the second the reverse. Both masks must be
    non-empty. ``method="kdtree"`` (default) or ``"edt"`` (a Euclidean distance
    transform of the box, as the official package does on the whole volume): both
    exact, the same distances.
    """
    pred, ref, spacing = _box_pair(pred_mask, ref_mask, spacing, margin=1)
    return _nearest(surface(ref), surface(pred), spacing, method)


# --------------------------------------------------------------------------- surfels (DeepMind)

_CORNER_BITS = {(a, b, c): 128 >> (4 * a + 2 * b + c) for a in (0, 1) for b in (0, 1) for c in (0, 1)}
"""Corner of a 2x2x2 cube (0: lower, 1: upper index per axis) -> its bit in the neighbour code
(DeepMind's kernel ``[[[128, 64], [32, 16]], [[8, 4], [2, 1]]]``)."""


@lru_cache(maxsize=32)
def surfel_area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    """Neighbour code (0-255) -> surfel area in mm² at ``spacing``: DeepMind's table (``surface-distance``)."""
    from surface_distance.lookup_tables import create_table_neighbour_code_to_surface_area

    table = np.asarray(create_table_neighbour_code_to_surface_area(spacing), dtype=np.float64)
    table.setflags(write=False)
    return table


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Mask ``(X, Y, Z)`` bool -> codes ``(X+1, Y+1, Z+1)`` uint8 of the 2x2x2 cubes; cube ``(i, j, k)``
    has corners at voxels ``i-1..i``, ``j-1..j``, ``k-1..k`` (outside the array counts as empty)."""
    if mask.ndim != 3:
        raise BratsSegError(f"surfels need a 3-D mask, got shape {mask.shape}")
    padded = np.pad(mask, 1).view(np.uint8)
    n = tuple(s + 1 for s in mask.shape)
    codes = np.zeros(n, np.uint8)
    for (a, b, c), bit in _CORNER_BITS.items():
        codes |= padded[a:a + n[0], b:b + n[1], c:c + n[2]] * np.uint8(bit)
    return codes


def surfel_distances(pred_mask, ref_mask, spacing=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surfel distances (mm) and areas (mm²): ``(ref -> pred, ref areas, pred -> ref, pred areas)``.

    Distance of each reference surfel to the nearest prediction surfel and the
    reverse (DeepMind's ``compute_surface_distances``, unsorted). Both masks non-empty.
    """
    pred, ref, spacing = _box_pair(pred_mask, ref_mask, spacing, margin=0)
    table = surfel_area_table(spacing)
    code_pred, code_ref = neighbour_codes(pred), neighbour_codes(ref)
    on_pred, on_ref = (code_pred != 0) & (code_pred != 255), (code_ref != 0) & (code_ref != 255)
    d_ref, d_pred = _nearest(on_ref, on_pred, spacing)
    # areas in the order of the distances: common surfels first, then the others
    common = on_ref & on_pred
    area_ref = np.concatenate([table[code_ref[common]], table[code_ref[on_ref & ~common]]])
    area_pred = np.concatenate([table[code_pred[common]], table[code_pred[on_pred & ~common]]])
    return d_ref, area_ref, d_pred, area_pred


def area_percentile(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    """Area-weighted percentile (DeepMind): sort by (distance, area); the distance of the first element
    whose cumulative area share reaches ``percent`` %; inf for no elements."""
    if len(distances) == 0:
        return float("inf")
    order = np.lexsort((areas, distances))
    d, a = distances[order], areas[order]
    cumulative = np.cumsum(a) / np.sum(a)
    return float(d[min(int(np.searchsorted(cumulative, percent / 100.0)), len(d) - 1)])
