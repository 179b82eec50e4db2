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
    state_dict     model weights
    provenance     {"epoch", "metrics", "config", "versions", ...}
    training       optional resume state (optimizer, scheduler, scaler, RNG), last.pt only

Lives at package level because both ``training`` (writes) and ``inference``
(reads) need it; it imports only ``conventions``, ``config``, ``errors`` and ``models``.
"""

from __future__ import annotations

import pickle
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .config import PreprocessConfig, from_dict, to_dict
from .conventions import MODALITIES, REGIONS
from .errors import CheckpointError
from .files import atomic_path

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = ("format", "model", "channels", "regions", "label_scheme", "preprocessing", "patch_size", "state_dict")


def library_versions() -> dict[str, str]:
    import numpy
    versions = {"python": platform.python_version(), "torch": str(torch.__version__),
                "numpy": str(numpy.__version__)}
    try:
        from . import __version__
        versions["brats_seg"] = __version__
    except ImportError:  # pragma: no cover
        pass
    try:
        import monai
        versions["monai"] = str(monai.__version__)
    except ImportError:  # pragma: no cover
        pass
    return versions


def make_checkpoint(
    model: torch.nn.Module,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    channels: Sequence[str] = MODALITIES,
    label_scheme: str = "brats2021",
    preprocessing: PreprocessConfig | Mapping[str, Any] | None = None,
    patch_size: Sequence[int] = (128, 128, 128),
    provenance: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (weights moved to CPU)."""
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
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "provenance": {"versions": library_versions(), **to_dict(dict(provenance or {}))},
    }
    if training is not None:
        ckpt["training"] = dict(training)
    return ckpt


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
    return ckpt


def preprocessing_of(ckpt: Mapping[str, Any]) -> PreprocessConfig:
    return from_dict(PreprocessConfig, ckpt["preprocessing"], source="checkpoint preprocessing")


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
