"""nnU-Net v2's resampling, for imported nnU-Net models whose case spacing differs from the plans' spacing.

What ``plans.json`` names (``resample_data_or_seg_to_shape``, the default of nnU-Net v2's planners) does,
rebuilt on ``scipy.ndimage`` (the same spline code its scikit-image ``resize`` calls):

* the grid: ``round(old_spacing / new_spacing * old_shape)`` voxels per axis;
* the separate-z rule: when one axis of the current spacing (else of the new one) is more than 3x
  coarser than the finest (``ANISO_THRESHOLD``), and it is the only coarsest axis, each slice across
  that axis is resampled in 2-D with ``order`` and the axis itself with ``order_z`` (0: nearest);
  ``force_separate_z`` True/False overrides the rule. Otherwise all three axes with ``order``;
* interpolation as ``skimage.transform.resize(mode="edge", anti_aliasing=False)``: a spline of ``order``
  on voxel centres with aligned edges (``grid_mode``), in float64, clipped to the range of the values
  resampled (scikit-image's ``clip=True``: per 2-D slice under the separate-z rule), cast back.

The predictor (:class:`NNUNetResampling`) resamples the image after cropping and normalization (nnU-Net's
order) to the plans' spacing, runs the windows there, and resamples the LOGITS back to the cropped grid
(``resampling_fn_probabilities_kwargs``, order 1) before the sigmoid/softmax, as nnU-Net's export does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..errors import CheckpointError

ANISO_THRESHOLD = 3.0
"""nnU-Net's ``nnunetv2.configuration.ANISO_THRESHOLD``: max / min spacing above which z is resampled apart."""

SUPPORTED = "resample_data_or_seg_to_shape"


def new_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    """nnU-Net's ``compute_new_shape``: ``round(old_spacing / new_spacing * old_shape)`` per axis."""
    return tuple(int(round(s / t * n)) for n, s, t in zip(shape, spacing, new_spacing))


def _lowres_axes(spacing: Sequence[float]) -> list[int]:
    top = max(spacing)
    return [a for a, s in enumerate(spacing) if top / s == 1]


def separate_z_axis(spacing: Sequence[float], new_spacing: Sequence[float],
                    force_separate_z: bool | None = None) -> int | None:
    """The axis resampled apart (nnU-Net's ``determine_do_sep_z_and_axis``), or None."""
    if force_separate_z is not None:
        axes = _lowres_axes(spacing) if force_separate_z else []
    elif max(spacing) / min(spacing) > ANISO_THRESHOLD:
        axes = _lowres_axes(spacing)
    elif max(new_spacing) / min(new_spacing) > ANISO_THRESHOLD:
        axes = _lowres_axes(new_spacing)
    else:
        axes = []
    return axes[0] if len(axes) == 1 else None


def _resize(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """scikit-image's ``resize(array, shape, order, mode="edge", anti_aliasing=False)`` of a float64 array."""
    shape = tuple(int(s) for s in shape)
    if array.shape == shape:
        return array.copy()
    out = ndimage.zoom(array, np.divide(shape, array.shape), order=order, mode="nearest", grid_mode=True)
    return np.clip(out, array.min(), array.max(), out=out)


def resample_to_shape(data: np.ndarray, shape: Sequence[int], spacing: Sequence[float],
                      new_spacing: Sequence[float], order: int = 3, order_z: int = 0,
                      force_separate_z: bool | None = None) -> np.ndarray:
    """``data`` ``(C, h, w, d)`` resampled to ``shape`` as nnU-Net's ``resample_data_or_seg_to_shape`` does
    (images and logits, not label maps); same dtype."""
    shape = tuple(int(s) for s in shape)
    if tuple(data.shape[1:]) == shape:
        return data
    axis = separate_z_axis(spacing, new_spacing, force_separate_z)
    out = np.empty((data.shape[0], *shape), dtype=data.dtype)
    for c, channel in enumerate(data):
        channel = channel.astype(np.float64)
        if axis is None:
            out[c] = _resize(channel, shape, order)
            continue
        plane = [s for a, s in enumerate(shape) if a != axis]
        slices = np.moveaxis(channel, axis, 0)
        inplane = np.stack([_resize(s, plane, order) for s in slices], axis=axis)
        zoom = [1.0] * 3
        zoom[axis] = shape[axis] / inplane.shape[axis]
        out[c] = inplane if zoom[axis] == 1 else ndimage.zoom(inplane, zoom, order=order_z, mode="nearest",
                                                               grid_mode=True)
    return out


def _kwargs(settings: Mapping[str, Any], key: str) -> dict[str, Any]:
    if settings.get(key.removesuffix("_kwargs")) != SUPPORTED:
        raise CheckpointError(f"nnU-Net resampling {key.removesuffix('_kwargs')}="
                              f"{settings.get(key.removesuffix('_kwargs'))!r} is not supported (only {SUPPORTED})")
    kwargs = dict(settings.get(key) or {})
    return {"order": int(kwargs.get("order", 3)), "order_z": int(kwargs.get("order_z", 0)),
            "force_separate_z": kwargs.get("force_separate_z")}


@dataclass(frozen=True)
class NNUNetResampling:
    """An nnU-Net model's resampling of one case: ``spacing`` (the cropped case's, mm) to ``target`` (the plans').

    :meth:`image`: ``(C, h, w, d)`` normalized crop -> the target grid; :meth:`logits`: ``(1, K, *target grid)``
    -> ``(1, K, h, w, d)``, before the activation.
    """

    settings: Mapping[str, Any]
    spacing: tuple[float, ...]
    target: tuple[float, ...]
    cropped: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return new_shape(self.cropped, self.spacing, self.target)

    def image(self, image: np.ndarray) -> np.ndarray:
        kw = _kwargs(self.settings, "resampling_fn_data_kwargs")
        return resample_to_shape(image, self.shape, self.spacing, self.target, **kw)

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        kw = _kwargs(self.settings, "resampling_fn_probabilities_kwargs")
        back = resample_to_shape(logits[0].cpu().numpy(), self.cropped, self.target, self.spacing, **kw)
        return torch.from_numpy(back)[None].to(logits.device)


def resampling_settings(ckpt: Mapping[str, Any]) -> dict[str, Any] | None:
    """The nnU-Net resampling an imported checkpoint records (``provenance.imported.resampling``), or None."""
    imported = (ckpt.get("provenance") or {}).get("imported") or {}
    settings = imported.get("resampling")
    if imported.get("framework") != "nnU-Net" or not settings:
        return None
    for key in ("resampling_fn_data_kwargs", "resampling_fn_probabilities_kwargs"):
        _kwargs(settings, key)  # an unsupported function is refused when the model is loaded
    return dict(settings)


def resampled_case(settings: Mapping[str, Any] | None, target: Sequence[float] | None, image: np.ndarray,
                   properties: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any], Any]:
    """``(image, properties, back)`` of a cropped, normalized case ``image`` ``(C, h, w, d)``: unchanged with
    ``back`` None when ``settings`` is None (not an nnU-Net import); else on the ``target`` grid as nnU-Net
    resamples it, ``properties``' ``shape``/``spacing`` updated and ``back`` = :meth:`NNUNetResampling.logits`."""
    if settings is None or target is None:
        return image, dict(properties), None
    grid = NNUNetResampling(settings, tuple(float(s) for s in properties["original_spacing"]),
                            tuple(float(s) for s in target), tuple(int(s) for s in properties["cropped_shape"]))
    image = grid.image(image)
    return image, {**properties, "shape": list(image.shape[1:]), "spacing": list(grid.target)}, grid.logits
