"""The checkpoint: one ``.pt`` file holding everything needed to predict a new scan.

Loadable with ``torch.load(path, weights_only=True)``: only tensors, numbers,
strings, lists and dicts. Layout (ARCHITECTURE.md §4)::

    format         int, CHECKPOINT_FORMAT
    model          {"name": registry name, "kwargs": {...}}
    channels       ["t1n", "t1c", "t2w", "t2f"]   # input channel order, by NAME
    regions        ["WT", "TC", "ET"]             # output groups, channel order (kept for older readers)
    outputs        {"scheme", "kind", "groups", "values"}: what the outputs mean and how they are written
                   back (brats_seg.outputs.Outputs; optional: without it, the WT/TC/ET regions of label_scheme)
    label_scheme   scheme of the training labels (e.g. "brats2021")
    preprocessing  PreprocessConfig as a dict
    patch_size     [H, W, D] training patch (the default inference window)
    spacing        [sx, sy, sz] training voxel spacing in mm, in the arrays' axis order (nibabel i, j, k),
                   or None when unknown (format 2; read it with spacing_of)
    trained_subsets  [["t1c", "t2f"], ...] the channel subsets the network was trained for (modality
                   dropout; optional, read it with trained_subsets_of)
    required_channels  the channels in every trained subset (optional, read it with required_channels_of)
    intensity_range  {seq: {stat: [min, max]}, "cases": n, "rule": ...}: the training cases' raw
                   intensities inside the brain (optional; data.intensity; read it with intensity_range_of)
    state_dict     model weights
    provenance     {"epoch", "metrics", "config", "versions", ...}
    training       optional resume state (optimizer, scheduler, scaler, RNG), last.pt only

Format history: 1, the keys above without ``spacing``; 2 adds ``spacing`` (format-1
files still load; :func:`spacing_of` gives None for them). ``trained_subsets`` and
``required_channels`` are optional in formats 1 and 2: a checkpoint without them was trained on
complete input, so every channel is required (its only trained subset is all of ``channels``).

Lives at package level because both ``training`` (writes) and ``inference``
(reads) need it; it imports only ``conventions``, ``config``, ``errors``, ``files`` and ``models``.
"""

from __future__ import annotations

import math
import pickle
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import PreprocessConfig, from_dict, to_dict
from .conventions import MODALITIES, REGIONS
from .errors import BratsSegError, CheckpointError
from .files import atomic_path
from .outputs import Outputs, outputs_of

CHECKPOINT_FORMAT = 2
REQUIRED_KEYS = ("format", "model", "channels", "regions", "label_scheme", "preprocessing", "patch_size", "state_dict")


def library_versions() -> dict[str, str]:
    """Versions of python, brats_seg, torch, numpy and monai as plain ``str`` (``weights_only`` refuses
    ``torch.__version__``'s own type). MONAI's is read from its installed metadata: importing MONAI takes
    seconds (most of an imported model's set-up on a CPU)."""
    import importlib.metadata

    import numpy

    return {"python": platform.python_version(), "brats_seg": str(__version__), "torch": str(torch.__version__),
            "numpy": str(numpy.__version__), "monai": importlib.metadata.version("monai")}


def make_checkpoint(
    model: torch.nn.Module,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    channels: Sequence[str] = MODALITIES,
    label_scheme: str = "brats2021",
    preprocessing: PreprocessConfig | Mapping[str, Any] | None = None,
    patch_size: Sequence[int] = (128, 128, 128),
    spacing: Sequence[float] | None = None,
    provenance: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    subsets: Sequence[Sequence[str]] | None = None,
    intensity_range: Mapping[str, Any] | None = None,
    outputs: Outputs | None = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (weights moved to CPU).

    ``spacing``: the voxel spacing (mm, array-axis order) the network was trained at; ``None``
    records that it is unknown (a network not trained by ``brats-seg train``), and prediction
    then keeps each scan's own grid. ``subsets``: the channel subsets it was trained for
    (modality dropout); None: complete input only. ``intensity_range``: the training cases'
    :func:`~brats_seg.data.reading.intensity.training_range` (None: unknown, not recorded). ``outputs``: what
    the output channels mean (:class:`~brats_seg.outputs.Outputs`); None records none (the WT/TC/ET
    regions of ``label_scheme``).
    """
    module = getattr(model, "module", model)  # unwrap DDP
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": {"name": model_name, "kwargs": to_dict(dict(model_kwargs))},
        "channels": list(channels),
        "regions": list(REGIONS if outputs is None else outputs.groups),
        "label_scheme": label_scheme,
        "preprocessing": to_dict(preprocessing or PreprocessConfig()),
        "patch_size": [int(p) for p in patch_size],
        "spacing": _checked_spacing(spacing, "make_checkpoint"),
        "trained_subsets": _checked_subsets([list(channels)] if subsets is None else subsets, channels,
                                            "make_checkpoint"),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "provenance": {"versions": library_versions(), **to_dict(dict(provenance or {}))},
    }
    ckpt["required_channels"] = _intersection(ckpt["trained_subsets"], channels)
    if intensity_range is not None:
        ckpt["intensity_range"] = to_dict(dict(intensity_range))
    if outputs is not None:
        ckpt["outputs"] = outputs.to_dict()
    if training is not None:
        ckpt["training"] = dict(training)
    return ckpt


def _checked_subsets(subsets: Sequence[Sequence[str]], channels: Sequence[str], where: str) -> list[list[str]]:
    """Non-empty, distinct subsets of ``channels``, each in channel order; :class:`CheckpointError` otherwise."""
    out: list[list[str]] = []
    if not isinstance(subsets, (list, tuple)) or not subsets:
        raise CheckpointError(f"{where}: trained_subsets must be a non-empty list of channel lists")
    for subset in subsets:
        names = list(subset) if isinstance(subset, (list, tuple)) else []
        if not names or len(set(names)) != len(names) or not set(names) <= set(channels):
            raise CheckpointError(f"{where}: trained subset {subset!r} is not a non-empty subset of the"
                                  f" channels {list(channels)}")
        ordered = [c for c in channels if c in names]
        if ordered in out:
            raise CheckpointError(f"{where}: trained subset {ordered} is listed twice")
        out.append(ordered)
    return out


def _intersection(subsets: Sequence[Sequence[str]], channels: Sequence[str]) -> list[str]:
    return [c for c in channels if all(c in s for s in subsets)]


def _checked_spacing(spacing: Sequence[float] | None, where: str) -> list[float] | None:
    if spacing is None:
        return None
    values = [float(s) for s in spacing]
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise CheckpointError(f"{where}: spacing must be three positive numbers (mm), got {list(spacing)}")
    return values


def save_checkpoint(ckpt: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically: temporary file in the same folder, fsync, then rename.

    A process killed at any moment leaves either the old file or the new one.
    """
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(dict(ckpt), tmp)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint with ``weights_only=True``.

    Raises :class:`CheckpointError` for a missing file, a file that needs a pickle
    (refused: it could run code), or a file that is not a brats_seg checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # no pickled class asked for: not a torch file at all
            raise CheckpointError(f"{path}: not a readable checkpoint (not a PyTorch file)") from None
        raise CheckpointError(
            f"{path}: refused: the file needs pickled Python objects to load, which could run code;"
            " brats_seg checkpoints hold only tensors and plain values"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(f"{path}: not a brats_seg checkpoint (missing {', '.join(missing)})")
    if ckpt["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format']} is newer than this brats_seg"
                              f" understands ({CHECKPOINT_FORMAT}); upgrade brats_seg")
    if ckpt["format"] >= 2:
        if "spacing" not in ckpt:
            raise CheckpointError(f"{path}: not a brats_seg checkpoint (format {ckpt['format']} without spacing)")
        _checked_spacing(ckpt["spacing"], str(path))
    if "trained_subsets" in ckpt or "required_channels" in ckpt:
        subsets = _checked_subsets(ckpt.get("trained_subsets"), ckpt["channels"], str(path))
        required = ckpt.get("required_channels")
        if required is None or list(required) != _intersection(subsets, ckpt["channels"]):
            raise CheckpointError(f"{path}: required_channels {required!r} are not the channels common to"
                                  f" every trained subset")
    if "outputs" in ckpt:
        try:
            outputs_of(ckpt)
        except BratsSegError as e:
            raise CheckpointError(f"{path}: {e}") from None
    return ckpt


def preprocessing_of(ckpt: Mapping[str, Any]) -> PreprocessConfig:
    return from_dict(PreprocessConfig, ckpt["preprocessing"], source="checkpoint preprocessing")


def intensity_range_of(ckpt: Mapping[str, Any]) -> dict[str, Any] | None:
    """The training cases' intensity range (``data.reading.intensity.training_range``), or None for a
    checkpoint that records none (older files, networks not trained by ``brats-seg train``)."""
    found = ckpt.get("intensity_range")
    if found is not None and not isinstance(found, Mapping):
        raise CheckpointError(f"checkpoint intensity_range must be a dict, got {type(found).__name__}")
    return None if found is None else dict(found)


def spacing_of(ckpt: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """The training voxel spacing (mm, array-axis order i, j, k), or None when the checkpoint does
    not know it (format 1, or written without one)."""
    spacing = ckpt.get("spacing") if ckpt.get("format", 1) >= 2 else None
    return None if spacing is None else tuple(float(s) for s in spacing)


def trained_subsets_of(ckpt: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The channel subsets the network was trained for, each in channel order; a checkpoint that
    records none was trained on complete input (its one subset is all of ``channels``)."""
    subsets = ckpt.get("trained_subsets")
    return [tuple(s) for s in subsets] if subsets is not None else [tuple(ckpt["channels"])]


def required_channels_of(ckpt: Mapping[str, Any]) -> tuple[str, ...]:
    """The channels every input must have (all of them for a checkpoint that records no subsets)."""
    return tuple(_intersection(trained_subsets_of(ckpt), ckpt["channels"]))


def model_from_checkpoint(ckpt: Mapping[str, Any], *, strict: bool = True) -> torch.nn.Module:
    """Build the registered network named in the checkpoint and load its weights (eval mode)."""
    from .models.registry import build_model

    spec = ckpt["model"]
    model = build_model(spec["name"], **spec.get("kwargs", {}))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=strict)
    except RuntimeError as e:
        detail = str(e).splitlines()[0]
        raise CheckpointError(f"checkpoint weights do not fit model {spec['name']!r}: {detail}") from None
    return model.eval()
