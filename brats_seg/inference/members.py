"""Ensemble members: a network and what it needs to predict a new scan, read from its checkpoint.

The grid a member predicts on is its training spacing: ``ckpt["spacing"]`` (mm, in the
voxel-axis order of the arrays; recorded by training), else the preprocessing's target
spacing. Cases are cropped to the brain, resampled to it (cubic spline) and their region
probabilities resampled back (linear) onto the cropped input grid before thresholding.
A format-1 checkpoint that recorded neither predicts on each case's own grid; the
predictor says so once (``Member.spacing_unknown``), as it cannot know better.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import REQUIRED_KEYS, load_checkpoint, model_from_checkpoint, preprocessing_of, trained_subsets_of
from ..config import PreprocessConfig
from ..conventions import REGIONS, canonical_modality
from ..errors import BratsSegError, CheckpointError
from ..models.base import round_up
from .activations import get_activation


@dataclass
class Member:
    """One ensemble member: a network in eval mode and what it needs to run.

    ``channels``: input channel names in the network's order; ``preprocessing``: as in
    training, its ``spacing`` the grid predicted on (None: each case's own); ``window``:
    sliding-window size (the training patch by default); ``weight``: share in the ensemble.
    """

    network: torch.nn.Module
    channels: tuple[str, ...]
    preprocessing: PreprocessConfig
    window: tuple[int, int, int]
    label_scheme: str = "brats2021"
    regions: tuple[str, ...] = REGIONS
    name: str = "network"
    weight: float = 1.0
    model: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's ``model`` entry (registry name and kwargs), for the record."""
    activation: str = "sigmoid"
    """How outputs become region probabilities (:mod:`brats_seg.inference.activations`)."""
    spacing_unknown: bool = False
    """The checkpoint recorded no training spacing: cases are predicted on their own grid."""
    postprocess: dict[str, Any] | None = None
    """The postprocessing its training run recorded (``TrainConfig.postprocess``), None if none."""
    subsets: tuple[tuple[str, ...], ...] = ()
    """Channel subsets the network was trained for (modality dropout); empty: complete input only."""
    outputs: dict[str, Any] | None = None
    """An imported model's declared outputs and their write-back (:func:`brats_seg.importers.common.write_back`)."""
    window_weights: str = "gaussian"
    """Sliding-window importance map (:data:`.sliding_window.WINDOW_WEIGHTS`): ``nnunet`` for nnU-Net imports."""

    @property
    def mirrors_inside(self) -> bool:
        """The network mirrors its windows itself (nnU-Net imports: logits averaged per window)."""
        return bool(getattr(self.network, "mirrors_inside", False))

    @property
    def trained_subsets(self) -> tuple[tuple[str, ...], ...]:
        return self.subsets or (tuple(self.channels),)


def canonical_channels(names: Sequence[str]) -> tuple[str, ...]:
    """Channel names in canonical form; a name we do not know is kept (only the same name matches it)."""
    out = []
    for n in names:
        try:
            out.append(canonical_modality(n))
        except BratsSegError:
            out.append(str(n))
    return tuple(out)


def training_spacing(ckpt: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """The spacing (mm) the checkpoint's network was trained at, or None if it records none.

    ``ckpt["spacing"]`` when present, else the preprocessing's target spacing (the cache was
    resampled to it). Raises :class:`CheckpointError` for anything but three positive numbers.
    """
    spacing = ckpt.get("spacing")
    if spacing is None:
        spacing = (ckpt.get("preprocessing") or {}).get("spacing")
    if spacing is None:
        return None
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise CheckpointError(f"checkpoint spacing must be three positive numbers (mm), got {spacing!r}")
    return values


def load_model_source(source: str | Path | Mapping[str, Any], *, folds: Sequence[str] | None = None,
                      channels: Sequence[str] | None = None,
                      checkpoint: str | None = None) -> tuple[Mapping[str, Any], str]:
    """(checkpoint dict, name) of whatever ``--model`` names: a brats_seg checkpoint file, a loaded dict,
    or a folder of a model trained elsewhere (nnU-Net v2: :mod:`brats_seg.importers`)."""
    if isinstance(source, Mapping):
        return source, str(source["model"].get("name", "network"))
    if Path(source).is_dir():
        from ..importers import import_source

        return import_source(source, folds=folds, channels=channels, checkpoint=checkpoint), str(source)
    if folds or channels or checkpoint:
        raise CheckpointError(f"{source}: --folds/--channels apply to imported model folders, not to checkpoints")
    return load_checkpoint(source), str(source)


def network_of(ckpt: Mapping[str, Any]) -> torch.nn.Module:
    """The network of any checkpoint dict, ours or imported (eval mode, weights loaded)."""
    from ..importers import IMPORTED_NETWORKS, network_from_checkpoint

    if ckpt["model"].get("name") in IMPORTED_NETWORKS:
        return network_from_checkpoint(ckpt)
    return model_from_checkpoint(ckpt)


def member_from_checkpoint(source: str | Path | Mapping[str, Any], window: Sequence[int] | None = None, *,
                           folds: Sequence[str] | None = None, channels: Sequence[str] | None = None,
                           checkpoint: str | None = None) -> Member:
    """Load a checkpoint (path, read with ``weights_only=True``; or an already loaded dict) or an imported
    model's folder (:func:`load_model_source`)."""
    if isinstance(source, Mapping):
        missing = [k for k in REQUIRED_KEYS if k not in source]
        if missing:
            raise CheckpointError(f"checkpoint dict is not a brats_seg checkpoint (missing {', '.join(missing)})")
    ckpt, name = load_model_source(source, folds=folds, channels=channels, checkpoint=checkpoint)
    network = network_of(ckpt)
    divisor = int(getattr(network, "size_divisor", 1))
    win = tuple(round_up(w, divisor) for w in (window or ckpt["patch_size"]))
    if len(win) != 3:
        raise CheckpointError(f"{name}: window/patch size must have 3 sides, got {list(win)}")
    activation = str(ckpt.get("provenance", {}).get("output_activation", "sigmoid"))
    get_activation(activation)  # validates
    spacing = training_spacing(ckpt)
    postprocess = (ckpt.get("provenance", {}).get("config") or {}).get("postprocess")
    preprocessing = dataclasses.replace(preprocessing_of(ckpt), spacing=spacing)
    subsets = tuple(canonical_channels(s) for s in trained_subsets_of(ckpt))
    return Member(network, canonical_channels(ckpt["channels"]), preprocessing, win, str(ckpt["label_scheme"]),
                  tuple(ckpt["regions"]), name, model=dict(ckpt["model"]), activation=activation,
                  spacing_unknown=spacing is None and "imported" not in ckpt.get("provenance", {}), subsets=subsets,
                  postprocess=postprocess, outputs=ckpt.get("outputs"),
                  window_weights=str(ckpt.get("window_weights", "gaussian")))
