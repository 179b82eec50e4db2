"""Transfer learning: load whatever of a weights file fits a network, with a report of every key.

Weights only ever come from files (``torch.load(weights_only=True)``): our checkpoints (their
``state_dict``), plain state-dict files (also DDP-wrapped, ``module.`` prefixes), encoder-only
files such as MedicalNet's 3-D ResNets (Chen et al. 2019, "Med3D", arXiv:1904.00625), and
torchvision-format 2-D ResNet weights. Three steps:

1. **Placing keys** (:func:`match_keys`): a file key goes to the model key of the same name
   (after removing ``module.``/``_orig_mod.``); when no key matches that way, the file is taken
   as an encoder's and its keys are placed under ``model.encoder_prefixes`` (``conv1.weight`` ->
   ``encoder.conv1.weight``), the names of MedicalNet, MONAI's ``ResNet`` and torchvision.
2. **Fitting shapes** (:func:`fit_tensor`): a 2-D kernel ``(O, I, k, k)`` is inflated the I3D way
   (Carreira & Zisserman 2017, arXiv:1705.07750): repeated ``t`` times along the new axis and
   divided by ``t``, so a volume of identical slices gives the 2-D network's activations. A first
   convolution trained on another number of input channels (MedicalNet: 1; torchvision: RGB) is
   averaged over its channels and repeated over ours, scaled by ``I_file / I_model`` (1 -> 4
   channels: each copy is the original divided by 4), so ``C`` identical input channels give the
   original activations. Any other shape difference is reported as mismatched and left as initialized.
3. **Checking inputs** (:func:`check_inputs`): a brats_seg checkpoint records its channels and
   preprocessing; fine-tuning refuses one whose inputs were normalized differently from this run's
   (pretraining and fine-tuning must see the same kind of numbers). A file that records nothing
   (MedicalNet: z-score over the nonzero voxels of each volume, as our default ``zscore``) gets a
   line in the report saying what this run feeds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import PreprocessConfig, from_dict, to_dict
from ..errors import CheckpointError, ConfigError

_WRAPPERS = ("module.", "_orig_mod.")


@dataclass
class TransferReport:
    """Which model keys were loaded from the file, and which were not (and why)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Model keys the file does not provide (left as initialized)."""
    unexpected: list[str] = field(default_factory=list)
    """File keys the model has no place for (ignored)."""
    mismatched: list[str] = field(default_factory=list)
    """``key: file shape vs model shape`` (left as initialized)."""
    inflated: list[str] = field(default_factory=list)
    """Model keys filled from 2-D kernels (I3D inflation)."""
    adapted: list[str] = field(default_factory=list)
    """``key: I -> C input channels ...`` for first convolutions fitted to our channel count."""
    placed_under: str | None = None
    """The encoder prefix the file's keys were placed under (an encoder-only file), or None."""
    inputs: str = ""
    """What the file says about its inputs against this run's."""

    def format(self, max_keys: int = 12) -> str:
        def keys(names: list[str]) -> str:
            shown = ", ".join(names[:max_keys])
            return shown + (f", ... ({len(names) - max_keys} more)" if len(names) > max_keys else "")

        notes = [f"{len(self.inflated)} inflated 2-D -> 3-D" if self.inflated else "",
                 f"file keys placed under {self.placed_under!r}" if self.placed_under else ""]
        notes = [n for n in notes if n]
        lines = [f"init-from {self.source}: loaded {len(self.loaded)} tensors" + (f" ({'; '.join(notes)})"
                                                                                  if notes else "")]
        for name in ("loaded", "adapted", "missing", "unexpected", "mismatched"):
            values = getattr(self, name)
            lines.append(f"  {name} ({len(values)}): {keys(values) if values else '-'}")
        if self.inputs:
            lines.append(f"  inputs: {self.inputs}")
        return "\n".join(lines)


@dataclass
class WeightsFile:
    """The tensors of a weights file and, for a brats_seg checkpoint, what its network was fed."""

    path: Path
    tensors: dict[str, torch.Tensor]
    channels: list[str] | None = None
    preprocessing: dict[str, Any] | None = None


def read_weights(path: str | Path) -> WeightsFile:
    """Tensors of a weights file: a brats_seg checkpoint, ``{"state_dict": ...}``, ``{"model": ...}`` or a
    plain state dict. Loaded with ``weights_only=True`` (a file needing pickled objects is refused)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot load with weights_only=True ({e.__class__.__name__}); only plain"
                              " tensor files are accepted") from None
    meta = obj if isinstance(obj, Mapping) else {}
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds no state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: holds no weight tensors")
    channels = meta.get("channels") if isinstance(meta.get("channels"), list) else None
    preprocessing = meta.get("preprocessing") if isinstance(meta.get("preprocessing"), Mapping) else None
    return WeightsFile(path, tensors, channels, dict(preprocessing) if preprocessing is not None else None)


def _unwrap(key: str) -> str:
    for w in _WRAPPERS:
        if key.startswith(w):
            key = key[len(w):]
    return key


def match_keys(keys: Sequence[str], model: nn.Module) -> tuple[dict[str, str], str | None]:
    """``({file key: model key}, prefix)``: same names first; if none match, the names placed under one of
    ``model.encoder_prefixes`` (then ``prefix`` is that prefix)."""
    own = model.state_dict()
    direct = {k: _unwrap(k) for k in keys if _unwrap(k) in own}
    if direct:
        return direct, None
    for prefix in tuple(getattr(model, "encoder_prefixes", ()) or ()):
        placed = {k: prefix + _unwrap(k) for k in keys if prefix + _unwrap(k) in own}
        if placed:
            return placed, prefix
    return {}, None


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """``(O, I, ...)`` -> ``(O, channels, ...)``: the mean over the ``I`` input channels, repeated, times
    ``I / channels``; ``channels`` identical inputs then give the original output."""
    reps = (1, channels) + (1,) * (weight.ndim - 2)
    return weight.mean(dim=1, keepdim=True).repeat(*reps) * (weight.shape[1] / channels)


def inflate_kernel(weight: torch.Tensor, target_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """I3D inflation ``(O, I, k, k)`` -> ``(O, I', t, k, k)``: repeat ``t`` times along the new axis and divide
    by ``t``; a different input-channel count goes through :func:`adapt_input_channels` first."""
    o, i, t = int(target_shape[0]), int(target_shape[1]), int(target_shape[2])
    if weight.ndim != 4 or weight.shape[0] != o or tuple(weight.shape[2:]) != tuple(target_shape[3:]):
        raise ValueError(f"cannot inflate {tuple(weight.shape)} into {tuple(target_shape)}")
    if weight.shape[1] != i:
        weight = adapt_input_channels(weight, i)
    return weight.unsqueeze(2).repeat(1, 1, t, 1, 1) / t


def fit_tensor(value: torch.Tensor, want: torch.Tensor, in_channels: int | None) -> tuple[torch.Tensor | None, str]:
    """``(tensor shaped like want, how)`` with ``how`` one of ``""``, ``"inflated"``, ``"adapted"``; ``(None, "")``
    when the shapes cannot be reconciled. Channel adaptation only for a first convolution (``want`` takes
    the model's ``in_channels``)."""
    if tuple(value.shape) == tuple(want.shape):
        return value, ""
    if value.ndim == 4 and want.ndim == 5:
        try:
            return inflate_kernel(value, want.shape), "inflated"
        except ValueError:
            return None, ""
    same_but_inputs = (value.ndim == want.ndim >= 3 and value.shape[0] == want.shape[0]
                       and tuple(value.shape[2:]) == tuple(want.shape[2:]))
    if same_but_inputs and in_channels is not None and want.shape[1] == in_channels:
        return adapt_input_channels(value, in_channels), "adapted"
    return None, ""


def check_inputs(weights: WeightsFile, channels: Sequence[str] | None,
                 preprocessing: Mapping[str, Any] | None) -> str:
    """Raise :class:`ConfigError` when the file's network was fed other channels or other preprocessing than
    this run's; else the report's line about inputs."""
    path = weights.path
    if channels is not None and weights.channels is not None and list(channels) != list(weights.channels):
        raise ConfigError(f"{path}: trained on channels {', '.join(weights.channels)}; this run's data has"
                          f" {', '.join(channels)}")
    if preprocessing is None:
        return ""
    ours = to_dict(from_dict(PreprocessConfig, dict(preprocessing), source="this run's preprocessing"))
    if weights.preprocessing is None:
        return (f"{path.name} records no preprocessing; this run feeds it inputs normalized by"
                f" {ours['normalization']!r}: use weights trained on inputs normalized that way")
    theirs = to_dict(from_dict(PreprocessConfig, weights.preprocessing, source=f"{path}: preprocessing"))
    differ = [k for k in ours if ours[k] != theirs.get(k)]
    if differ:
        def settings(d: dict) -> str:
            return ", ".join(f"{k}={d[k]}" for k in differ)

        raise ConfigError(f"{path}: its network saw inputs preprocessed with {settings(theirs)}, this run's data"
                          f" has {settings(ours)}; preprocess the data the same way (brats-seg preprocess) so"
                          " pretraining and fine-tuning see inputs normalized alike")
    return f"preprocessed as this run's data (normalization {ours['normalization']!r})"


def load_pretrained(model: nn.Module, path: str | Path, *, channels: Sequence[str] | None = None,
                    preprocessing: Mapping[str, Any] | None = None, strict_shapes: bool = False) -> TransferReport:
    """Load whatever of the weights in ``path`` fits ``model`` (placed and fitted as the module docstring says)
    and report the rest. ``channels``/``preprocessing``: what this run feeds the network (checked against a
    brats_seg checkpoint's). Raises :class:`ConfigError` when nothing at all fits, or inputs differ."""
    weights = read_weights(path)
    report = TransferReport(str(path), inputs=check_inputs(weights, channels, preprocessing))
    targets, report.placed_under = match_keys(list(weights.tensors), model)
    own = model.state_dict()
    in_channels = getattr(model, "build_kwargs", {}).get("in_channels")
    update = {}
    for file_key, key in targets.items():
        value, want = weights.tensors[file_key], own[key]
        fitted, how = fit_tensor(value, want, in_channels)
        if fitted is None:
            report.mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(want.shape)}")
            continue
        if how == "inflated":
            report.inflated.append(key)
        elif how == "adapted":
            report.adapted.append(f"{key}: {value.shape[1]} -> {want.shape[1]} input channels (channel mean"
                                  f" repeated, x {value.shape[1]}/{want.shape[1]})")
        update[key] = fitted.to(want.dtype)
        report.loaded.append(key)
    report.missing = [k for k in own if k not in set(targets.values())]
    report.unexpected = sorted(_unwrap(k) for k in weights.tensors if k not in targets)
    if not update:
        raise ConfigError(f"{path}: none of its {len(weights.tensors)} tensors fits model "
                          f"{getattr(model, 'registry_name', type(model).__name__)}")
    if strict_shapes and report.mismatched:
        raise ConfigError(f"{path}: shape mismatch: {report.mismatched[0]}")
    model.load_state_dict(update, strict=False)
    return report
