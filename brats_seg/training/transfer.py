"""Transfer learning: partial weight loading with a report, and 2-D -> 3-D kernel inflation.

Weights only ever come from files (``torch.load(weights_only=True)``): our
checkpoints (their ``state_dict``), plain state-dict files, or torchvision-format
2-D ResNet weights, which are inflated into the 3-D encoder of the backbone
U-Nets the I3D way (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?",
arXiv:1705.07750): a ``(O, I, k, k)`` kernel becomes ``(O, I, t, k, k)`` by
repeating it ``t`` times along the new axis and dividing by ``t``, so a volume of
identical slices gives the 2-D network's activations. The RGB input kernel is
averaged over its 3 channels and repeated over the MRI channels (divided by their
number). torchvision's ResNet names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...)
map to the encoder's keys under ``model.encoder_prefixes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

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

    def format(self, max_keys: int = 12) -> str:
        def keys(names: list[str]) -> str:
            shown = ", ".join(names[:max_keys])
            return shown + (f", ... ({len(names) - max_keys} more)" if len(names) > max_keys else "")

        lines = [f"init-from {self.source}: loaded {len(self.loaded)} tensors"
                 + (f" ({len(self.inflated)} inflated 2-D -> 3-D)" if self.inflated else "")]
        for name in ("loaded", "missing", "unexpected", "mismatched"):
            values = getattr(self, name)
            lines.append(f"  {name} ({len(values)}): {keys(values) if values else '-'}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
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
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds no state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: holds no weight tensors")
    return tensors


def _unwrap(key: str) -> str:
    for w in _WRAPPERS:
        if key.startswith(w):
            key = key[len(w):]
    return key


def inflate_kernel(weight: torch.Tensor, target_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """I3D inflation ``(O, I, k, k)`` -> ``(O, I', t, k, k)``: repeat ``t`` times along the new axis and divide
    by ``t``; a different input-channel count takes the channel mean repeated ``I'`` times, divided by ``I'/I``."""
    o, i, t = int(target_shape[0]), int(target_shape[1]), int(target_shape[2])
    if weight.ndim != 4 or weight.shape[0] != o or tuple(weight.shape[2:]) != tuple(target_shape[3:]):
        raise ValueError(f"cannot inflate {tuple(weight.shape)} into {tuple(target_shape)}")
    if weight.shape[1] != i:
        weight = weight.mean(dim=1, keepdim=True).repeat(1, i, 1, 1) * (weight.shape[1] / i)
    return weight.unsqueeze(2).repeat(1, 1, t, 1, 1) / t


def inflate_state_dict(state_2d: Mapping[str, torch.Tensor], model: nn.Module) -> tuple[dict, list[str], list[str]]:
    """Map a torchvision-format 2-D state dict onto ``model``'s encoder (``encoder_prefixes``).

    Returns ``(state_3d, inflated_keys, unexpected_2d_keys)``; convolution kernels are inflated,
    normalization parameters and statistics copied where the shapes agree.
    """
    prefixes = tuple(getattr(model, "encoder_prefixes", ()) or ())
    if not prefixes:
        raise ConfigError(f"{getattr(model, 'registry_name', type(model).__name__)} has no encoder to inflate into")
    own = model.state_dict()
    out, inflated, unexpected = {}, [], []
    for key, value in state_2d.items():
        target = next((p + _unwrap(key) for p in prefixes if p + _unwrap(key) in own), None)
        if target is None:
            unexpected.append(key)
            continue
        want = own[target]
        if value.ndim == 4 and want.ndim == 5:
            try:
                out[target] = inflate_kernel(value, want.shape)
                inflated.append(target)
            except ValueError:
                out[target] = value  # reported as mismatched by the loader
        else:
            out[target] = value
    return out, inflated, unexpected


def load_pretrained(model: nn.Module, path: str | Path, *, strict_shapes: bool = False) -> TransferReport:
    """Load whatever of the weights in ``path`` fits ``model`` (by name and shape) and report the rest.

    2-D weights (any 4-D kernel where the model's is 5-D) are inflated into the encoder
    first. Raises :class:`ConfigError` when nothing at all fits (wrong file or architecture).
    """
    source = read_state_dict(path)
    own = model.state_dict()
    report = TransferReport(str(path))
    is_2d = any(v.ndim == 4 for v in source.values()) and not any(v.ndim == 5 for v in source.values())
    if is_2d:
        source, report.inflated, report.unexpected = inflate_state_dict(source, model)
    source = {_unwrap(k): v for k, v in source.items()}
    update = {}
    for key, want in own.items():
        if key not in source:
            report.missing.append(key)
        elif tuple(source[key].shape) != tuple(want.shape):
            report.mismatched.append(f"{key}: file {tuple(source[key].shape)} vs model {tuple(want.shape)}")
        else:
            update[key] = source[key].to(want.dtype)
            report.loaded.append(key)
    report.unexpected = sorted({*report.unexpected, *(set(source) - set(own))})
    if not update:
        raise ConfigError(f"{path}: none of its {len(source)} tensors fits model "
                          f"{getattr(model, 'registry_name', type(model).__name__)}")
    if strict_shapes and report.mismatched:
        raise ConfigError(f"{path}: shape mismatch: {report.mismatched[0]}")
    model.load_state_dict(update, strict=False)
    return report
