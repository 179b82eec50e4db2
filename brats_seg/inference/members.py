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

from ..checkpoint import (
    REQUIRED_KEYS,
    intensity_range_of,
    load_checkpoint,
    model_from_checkpoint,
    preprocessing_of,
    trained_subsets_of,
)
from ..config import PreprocessConfig
from ..conventions import REGIONS, canonical_modality
from ..errors import BratsSegError, CheckpointError
from ..models.base import round_up
from ..outputs import Outputs, outputs_of, region_outputs
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
    intensity_range: dict[str, Any] | None = None
    """The training cases' raw intensity range (:mod:`brats_seg.data.reading.intensity`); None: not recorded."""
    outputs: Outputs | None = None
    """What the probabilities mean and how they are written back (None: the WT/TC/ET regions of
    ``label_scheme``, as a checkpoint without ``outputs`` predicts)."""
    window_weights: str = "gaussian"
    """Sliding-window importance map (:data:`.sliding_window.WINDOW_WEIGHTS`): ``nnunet`` for nnU-Net imports."""
    imported: bool = False
    """A model trained elsewhere (:mod:`brats_seg.importers`): its own write-back where nothing else is asked."""
    resampling: dict[str, Any] | None = None
    """nnU-Net's resampling settings (nnU-Net imports): a case off the target spacing is resampled as nnU-Net
    does, logits back before the activation (:mod:`brats_seg.importers.nnunet_resampling`); None: ours."""

    def __post_init__(self) -> None:
        if self.outputs is None:
            self.outputs = region_outputs(self.label_scheme, self.regions)

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


def output_activation(ckpt: Mapping[str, Any], outputs: Outputs, name: str) -> str:
    """How the checkpoint's logits become the probabilities of its ``outputs``: label outputs by a softmax over
    them; region outputs by a sigmoid, or (old ``dice_ce`` models, WT/TC/ET only) a softmax over the four
    classes. A network whose output channels do not fit raises :class:`CheckpointError`."""
    recorded = str(ckpt.get("provenance", {}).get("output_activation", "sigmoid"))
    activation = "softmax_labels" if outputs.kind == "labels" else recorded
    get_activation(activation)  # validates
    if activation == "softmax" and outputs.groups != REGIONS:
        raise CheckpointError(f"{name}: softmax over the WT/TC/ET classes cannot give outputs"
                              f" {' '.join(outputs.groups)}")
    channels = (ckpt.get("model") or {}).get("kwargs", {}).get("out_channels")
    expected = 4 if activation == "softmax" else outputs.channels
    if channels is not None and int(channels) != expected:
        raise CheckpointError(f"{name}: the network has {channels} output channels; its outputs"
                              f" ({outputs.kind} {' '.join(outputs.groups)}) need {expected}")
    return activation


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
    from ..importers.nnunet_resampling import resampling_settings

    ckpt, name = load_model_source(source, folds=folds, channels=channels, checkpoint=checkpoint)
    network = network_of(ckpt)
    divisor = int(getattr(network, "size_divisor", 1))
    win = tuple(round_up(w, divisor) for w in (window or ckpt["patch_size"]))
    if len(win) != 3:
        raise CheckpointError(f"{name}: window/patch size must have 3 sides, got {list(win)}")
    outputs = outputs_of(ckpt)
    activation = output_activation(ckpt, outputs, name)
    spacing, imported = training_spacing(ckpt), "imported" in ckpt.get("provenance", {})
    postprocess = (ckpt.get("provenance", {}).get("config") or {}).get("postprocess")
    preprocessing = dataclasses.replace(preprocessing_of(ckpt), spacing=spacing)
    subsets = tuple(canonical_channels(s) for s in trained_subsets_of(ckpt))
    return Member(network, canonical_channels(ckpt["channels"]), preprocessing, win, str(ckpt["label_scheme"]),
                  outputs.groups, name, model=dict(ckpt["model"]), activation=activation,
                  spacing_unknown=spacing is None and not imported, subsets=subsets, postprocess=postprocess,
                  intensity_range=intensity_range_of(ckpt), outputs=outputs,
                  window_weights=str(ckpt.get("window_weights", "gaussian")), imported=imported,
                  resampling=resampling_settings(ckpt))
