"""The checkpoint: one ``.pt`` file holding everything needed to predict a new scan.

Loadable with ``torch.load(path, weights_only=True)``: only tensors, numbers,
strings, lists and dicts. Layout (ARCHITECTURE.md §4)::

    format         int, CHECKPOINT_FORMAT
    model          {"name": registry name, "kwargs": {...}}
    channels       ["t1n", "t1c", "t2w", "t2f"]   # input channel order, by NAME
    regions        ["WT", "TC", "ET"]             # output channel order
    label_scheme   scheme of the training labels (e.g. "brats2021")
    preprocessing  PreprocessConfig as a dict
    patch_size     [H, W, D] training patch (the default inference window)
    spacing        [sx, sy, sz] training voxel spacing in mm, in the arrays' axis order (nibabel i, j, k),
                   or None when unknown (format 2; read it with spacing_of)
    state_dict     model weights
    provenance     {"epoch", "metrics", "config", "versions", ...}
    training       optional resume state (optimizer, scheduler, scaler, RNG), last.pt only

Format history: 1, the keys above without ``spacing``; 2 adds ``spacing`` (format-1
files still load; :func:`spacing_of` gives None for them).

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
from .errors import CheckpointError
from .files import atomic_path

CHECKPOINT_FORMAT = 2
REQUIRED_KEYS = ("format", "model", "channels", "regions", "label_scheme", "preprocessing", "patch_size", "state_dict")


def library_versions() -> dict[str, str]:
    """Versions of python, brats_seg, torch, numpy and monai as plain ``str`` (``weights_only`` refuses
    ``torch.__version__``'s own type)."""
    import monai
    import numpy

    return {"python": platform.python_version(), "brats_seg": str(__version__), "torch": str(torch.__version__),
            "numpy": str(numpy.__version__), "monai": str(monai.__version__)}


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
) -> dict[str, Any]:
    """Assemble the checkpoint dict (weights moved to CPU).

    ``spacing``: the voxel spacing (mm, array-axis order) the network was trained at; ``None``
    records that it is unknown (a network not trained by ``brats-seg train``), and prediction
    then keeps each scan's own grid.
    """
    module = getattr(model, "module", model)  # unwrap DDP
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": {"name": model_name, "kwargs": to_dict(dict(model_kwargs))},
        "channels": list(channels),
        "regions": list(REGIONS),
        "label_scheme": label_scheme,
        "preprocessing": to_dict(preprocessing or PreprocessConfig()),
        "patch_size": [int(p) for p in patch_size],
        "spacing": _checked_spacing(spacing, "make_checkpoint"),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "provenance": {"versions": library_versions(), **to_dict(dict(provenance or {}))},
    }
    if training is not None:
        ckpt["training"] = dict(training)
    return ckpt


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
    return ckpt


def preprocessing_of(ckpt: Mapping[str, Any]) -> PreprocessConfig:
    return from_dict(PreprocessConfig, ckpt["preprocessing"], source="checkpoint preprocessing")


def spacing_of(ckpt: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """The training voxel spacing (mm, array-axis order i, j, k), or None when the checkpoint does
    not know it (format 1, or written without one)."""
    spacing = ckpt.get("spacing") if ckpt.get("format", 1) >= 2 else None
    return None if spacing is None else tuple(float(s) for s in spacing)


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
