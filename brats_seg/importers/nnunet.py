"""Read an nnU-Net v2 trained model folder into a brats_seg checkpoint dict.

The folder ``<Trainer>__<Plans>__<configuration>/`` as nnU-Net writes it::

    dataset.json   channel_names -> our sequence names; labels (+ regions_class_order) -> outputs
    plans.json     configurations[<configuration>]: architecture, patch_size, spacing,
                   normalization_schemes, use_mask_for_norm, resampling; image_reader_writer,
                   transpose_forward (nnU-Net's array axis order)
    fold_<k>/checkpoint_final.pth (or checkpoint_best.pth): network_weights,
                   inference_allowed_mirroring_axes; read with torch.load(weights_only=True)

nnU-Net v1 folders (``*.model``/``*.pkl``) are refused: they are pickles that could run code.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import make_checkpoint
from ..config import PreprocessConfig
from ..errors import CheckpointError
from .common import outputs_dict, provenance, read_json
from .nnunet_network import NNUNetFolds
from .schemes import channel_names, label_outputs, region_outputs

CHECKPOINT_NAMES = ("checkpoint_final.pth", "checkpoint_best.pth")
READERS = {"SimpleITKIO": "reversed", "NibabelIO": "same"}
"""plans.json ``image_reader_writer`` -> nnU-Net's array axes vs ours (nibabel's i, j, k): SimpleITK
gives (k, j, i)."""
NORMALIZATIONS = {"ZScoreNormalization": {True: "nnunet_zscore_mask", False: "nnunet_zscore"}}
SAFE_GLOBALS = (np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType, np.dtypes.Int64DType)
"""What nnU-Net's checkpoint_*.pth need besides plain types (numpy scalars in its training log)."""


def is_nnunet_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("plans.json", "dataset.json", "plans.pkl")) \
        or any(path.glob("fold_*/*.model"))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (an nnU-Net v2 trained model folder has dataset.json and plans.json)")
    return read_json(path)


def _refuse_v1(root: Path) -> None:
    old = sorted(p.name for p in [*root.glob("*.pkl"), *root.glob("fold_*/*.model"), *root.glob("fold_*/*.pkl")])
    if old:
        raise CheckpointError(f"{root}: nnU-Net v1 files ({', '.join(old[:3])}) are pickles that could run code and"
                              " are never unpickled; nnU-Net v2 cannot use v1 models either: convert the raw dataset"
                              " with nnUNetv2_convert_old_nnUNet_dataset and train with nnU-Net v2")


def _configuration(root: Path, plans: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(configuration name, its entry with ``inherits_from`` resolved) named by the folder's name."""
    parts = root.resolve().name.split("__")
    configs = plans.get("configurations") or {}
    if len(parts) != 3 or parts[2] not in configs:
        raise CheckpointError(f"{root}: folder name must be <Trainer>__<Plans>__<configuration> with a configuration"
                              f" of plans.json ({', '.join(configs) or 'none'})")
    name, seen, chain = parts[2], set(), []
    while name is not None:
        if name in seen or name not in configs:
            raise CheckpointError(f"{root / 'plans.json'}: configuration {name!r} inherits from a missing or circular"
                                  " parent")
        seen.add(name)
        chain.append(configs[name])
        name = configs[name].get("inherits_from")
    merged: dict[str, Any] = {}
    for entry in reversed(chain):
        merged.update(entry)
    return parts[2], merged


def load_nnunet_weights(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of an nnU-Net checkpoint_*.pth, numpy scalars allowed, nothing else."""
    with ExitStack() as stack:
        stack.enter_context(torch.serialization.safe_globals([np._core.multiarray.scalar, *SAFE_GLOBALS]))
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: refused: it needs a pickled Python object{what} beyond tensors, plain"
                                  " values and numpy scalars, which could run code") from None
        except Exception as e:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("network_weights"), Mapping):
        raise CheckpointError(f"{path}: not an nnU-Net v2 checkpoint (no network_weights)")
    return ckpt


def _fold_files(root: Path, folds: Sequence[str] | None, checkpoint: str | None) -> list[Path]:
    found = sorted(p.name[5:] for p in root.glob("fold_*") if p.is_dir())
    chosen = [str(f) for f in folds] if folds else found
    if not chosen:
        raise CheckpointError(f"{root}: no fold_* folder")
    files = []
    for fold in chosen:
        names = [checkpoint] if checkpoint else CHECKPOINT_NAMES
        hits = [root / f"fold_{fold}" / n for n in names if (root / f"fold_{fold}" / n).is_file()]
        if not hits:
            raise CheckpointError(f"{root / f'fold_{fold}'}: no {' or '.join(names)} (folds here: "
                                  f"{', '.join(found) or 'none'})")
        files.append(hits[0])
    return files


@dataclass
class _Geometry:
    """Our axis ``axes[n]`` is nnU-Net's network axis n."""

    axes: tuple[int, int, int]

    def ours(self, values: Sequence[Any]) -> list[Any]:
        """Per-network-axis values in our axis order."""
        out = [None] * 3
        for n, a in enumerate(self.axes):
            out[a] = values[n]
        return out


def _geometry(plans: Mapping[str, Any], where: Path) -> _Geometry:
    reader = plans.get("image_reader_writer", "SimpleITKIO")
    if reader not in READERS:
        raise CheckpointError(f"{where}: image_reader_writer {reader!r} is not supported (supported:"
                              f" {', '.join(READERS)}): its axis order is unknown to brats_seg")
    transpose = [int(t) for t in plans.get("transpose_forward", [0, 1, 2])]
    if sorted(transpose) != [0, 1, 2]:
        raise CheckpointError(f"{where}: transpose_forward {transpose} is not a permutation of 0, 1, 2")
    return _Geometry(tuple(2 - t if READERS[reader] == "reversed" else t for t in transpose))


def _normalization(config: Mapping[str, Any], channels: int, where: Path) -> str:
    schemes, masks = list(config.get("normalization_schemes", [])), list(config.get("use_mask_for_norm", []))
    if len(schemes) != channels or len(masks) != channels:
        raise CheckpointError(f"{where}: normalization_schemes/use_mask_for_norm must name {channels} channels")
    kinds = {(s, bool(m)) for s, m in zip(schemes, masks)}
    if len(kinds) != 1 or schemes[0] not in NORMALIZATIONS:
        raise CheckpointError(f"{where}: normalization {schemes} with masks {masks} is not supported (supported:"
                              f" the same {', '.join(NORMALIZATIONS)} for every channel)")
    return NORMALIZATIONS[schemes[0]][bool(masks[0])]


def _network_spec(config: Mapping[str, Any], where: Path) -> tuple[str, dict[str, Any], list[str]]:
    arch = config.get("architecture")
    if not isinstance(arch, Mapping) or "network_class_name" not in arch:
        raise CheckpointError(f"{where}: configuration has no architecture.network_class_name (plans written by"
                              " nnU-Net < 2.4 are not supported)")
    return str(arch["network_class_name"]), dict(arch.get("arch_kwargs", {})), list(arch.get("_kw_requires_import",
                                                                                             []))


def _three(config: Mapping[str, Any], key: str, where: Path) -> list[float]:
    value = config.get(key)
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, (int, float)) and v > 0 for v in value):
        raise CheckpointError(f"{where}: configuration {key} must be three positive numbers (3-D configurations only),"
                              f" got {value!r}")
    return value


def import_nnunet(root: str | Path, folds: Sequence[str] | None = None, checkpoint: str | None = None,
                  channels: Sequence[str] | None = None) -> dict[str, Any]:
    """A brats_seg checkpoint dict from an nnU-Net v2 trained model folder (``folds``: default all;
    ``checkpoint``: file name, default checkpoint_final.pth else checkpoint_best.pth; ``channels``:
    our names for dataset.json's channels, in its order, when its names are not ours)."""
    root = Path(root)
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a folder")
    _refuse_v1(root)
    dataset, plans = _read_json(root / "dataset.json"), _read_json(root / "plans.json")
    config_name, config = _configuration(root, plans)
    names = channel_names(dataset.get("channel_names") or dataset.get("modality"), channels, root / "dataset.json")
    outputs, order, activation = (region_outputs if "regions_class_order" in dataset else label_outputs)(
        dataset.get("labels"), dataset.get("regions_class_order"), root / "dataset.json")
    geometry = _geometry(plans, root / "plans.json")
    normalization = _normalization(config, len(names), root / "plans.json")
    network_class, arch_kwargs, requires = _network_spec(config, root / "plans.json")
    files = _fold_files(root, folds, checkpoint)
    weights = [load_nnunet_weights(f) for f in files]
    mirror = weights[0].get("inference_allowed_mirroring_axes")
    kwargs = {"network_class": network_class, "arch_kwargs": arch_kwargs, "requires_import": requires,
              "in_channels": len(names), "out_channels": len(order), "folds": len(files),
              "axes": list(geometry.axes), "mirror_axes": [int(a) for a in (mirror or [])], "out_order": order}
    network = NNUNetFolds(**kwargs)
    for net, w, f in zip(network.folds, weights, files):
        try:
            net.load_state_dict(w["network_weights"])
        except RuntimeError as e:
            raise CheckpointError(f"{f}: weights do not fit plans.json's {network_class.rsplit('.', 1)[-1]}:"
                                  f" {str(e).splitlines()[0]}") from None
    spacing = [float(s) for s in geometry.ours(_three(config, "spacing", root / "plans.json"))]
    patch = [int(p) for p in geometry.ours(_three(config, "patch_size", root / "plans.json"))]
    record = provenance("nnU-Net", "2", root,
                        [root / "dataset.json", root / "plans.json", *files], configuration=config_name,
                        folds=[f.parent.name[5:] for f in files], checkpoint_files=[f.name for f in files],
                        resampling={k: config.get(k) for k in ("resampling_fn_data", "resampling_fn_data_kwargs",
                                                               "resampling_fn_probabilities",
                                                               "resampling_fn_probabilities_kwargs")},
                        trainer=str(weights[0].get("trainer_name", "")),
                        built_with={"dynamic_network_architectures": version("dynamic_network_architectures")})
    ckpt = make_checkpoint(network, model_name="nnunet_v2", model_kwargs=kwargs, channels=names,
                           label_scheme=outputs["scheme"],
                           preprocessing=PreprocessConfig(crop=True, normalization=normalization, spacing=spacing),
                           patch_size=patch, spacing=spacing,
                           provenance={"output_activation": activation, "imported": record})
    ckpt["outputs"] = outputs_dict(**outputs)
    ckpt["window_weights"] = "nnunet"
    return ckpt
