"""Composed transforms: every image resampled once into the atlas, and results taken back.

ITK transforms map points of the TARGET grid to the SOURCE image (what ``sitk.Resample``
needs). Two are estimated per case:

* ``<seq>_to_t1c.tfm`` (rigid): a T1c-native point -> the same anatomy in ``<seq>``'s space;
* ``t1c_to_atlas.tfm`` (affine): an atlas point -> the T1c-native point.

A sequence reaches the atlas through both at once (atlas -> T1c -> sequence, one
interpolation); a result goes back to a native grid through their inverses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..files import atomic_path
from ..outputs import default_outputs

INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}


def atlas_to_source(atlas: sitk.Transform, rigid: sitk.Transform | None) -> sitk.Transform:
    """Atlas point -> source point: ``atlas`` (atlas -> T1c) then ``rigid`` (T1c -> source; None for T1c)."""
    if rigid is None:
        return atlas
    return sitk.CompositeTransform([rigid, atlas])  # the last listed is applied first


def source_to_atlas(atlas: sitk.Transform, rigid: sitk.Transform | None) -> sitk.Transform:
    """Source-native point -> atlas point (the inverse of :func:`atlas_to_source`)."""
    back = atlas.GetInverse()
    return back if rigid is None else sitk.CompositeTransform([back, rigid.GetInverse()])


def resample(image: sitk.Image, grid: sitk.Image, transform: sitk.Transform, interpolation: str = "linear",
             default: float = 0.0) -> sitk.Image:
    """``image`` on ``grid`` through ``transform`` (grid points -> image points), float32."""
    out = sitk.Resample(image, grid, transform, INTERPOLATORS[interpolation], default, sitk.sitkFloat32)
    if interpolation == "bspline":  # B-splines overshoot at edges; MR intensities are never negative
        out = sitk.Clamp(out, sitk.sitkFloat32, lowerBound=0.0)
    return out


def array_of(image: sitk.Image) -> np.ndarray:
    """``(X, Y, Z)`` array of a SimpleITK image."""
    return np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)))


def image_of(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """A SimpleITK image of ``array`` ``(X, Y, Z)`` with ``like``'s geometry."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    out.CopyInformation(like)
    return out


def resample_labels(labels: np.ndarray, atlas_grid: sitk.Image, native_grid: sitk.Image,
                    transform: sitk.Transform, scheme: str) -> np.ndarray:
    """Labels ``(X, Y, Z)`` on the atlas grid -> labels on ``native_grid`` (``transform``: native
    point -> atlas point). Each region of the scheme's default outputs (WT, TC, ET; brats2024-gli
    adds RC, PED has ED NETC CC ET: :func:`brats_seg.outputs.default_outputs`, which give every
    label back) is interpolated linearly and kept where it exceeds 0.5, so regions stay nested and
    thick slices get smooth borders; they are written back as those outputs are."""
    outputs = default_outputs(scheme)
    regions = outputs.masks(labels, scheme)[0].astype(np.float32)
    moved = np.stack([array_of(resample(image_of(r, atlas_grid), native_grid, transform)) for r in regions])
    return outputs.write_back(moved > 0.5)


def resample_probabilities(probabilities: np.ndarray, atlas_grid: sitk.Image, native_grid: sitk.Image,
                           transform: sitk.Transform) -> np.ndarray:
    """``(C, X, Y, Z)`` float maps on the atlas grid -> ``(C, x, y, z)`` on ``native_grid`` (linear)."""
    return np.stack([array_of(resample(image_of(p.astype(np.float32), atlas_grid), native_grid, transform))
                     for p in probabilities])


def save_transform(transform: sitk.Transform, path: str | Path) -> Path:
    """Write an ITK ``.tfm`` (text) atomically."""
    with atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))
    return Path(path)


def read_transform(path: str | Path) -> sitk.Transform:
    """Read a ``.tfm`` written by :func:`save_transform` (a one-transform composite is unwrapped)."""
    t = sitk.ReadTransform(str(path))
    if t.GetName() == "CompositeTransform":
        t = sitk.CompositeTransform(t)
        if t.GetNumberOfTransforms() == 1:
            t = t.GetNthTransform(0)
    name = t.GetName()
    return sitk.Euler3DTransform(t) if name == "Euler3DTransform" else sitk.AffineTransform(t) \
        if name == "AffineTransform" else t
