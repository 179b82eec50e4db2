"""Read a MONAI bundle folder (the ``brats_mri_segmentation`` form) into a brats_seg checkpoint dict.

    configs/metadata.json     network_data_format: input channel_def -> our sequence names (or the
                              known-bundle table, or --channels); output channel_def -> WT, TC, ET
    configs/inference.json|yaml  network_def (built by monai.bundle.ConfigParser), preprocessing
                              (LoadImaged + NormalizeIntensityd(nonzero, channel_wise) only), inferer
                              (SlidingWindowInferer roi_size, overlap, mode), postprocessing (sigmoid)
    models/model.pt           the weights, torch.load(weights_only=True)

Predicted as the bundle's own pipeline does: the whole volume (no crop, no resampling), channel-wise
z-score over each channel's nonzero voxels, the roi as window. Labels are written in brats2021 values
(2 where WT, overwritten by 1 where TC, by 4 where ET: the bundle's own write-back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..checkpoint import make_checkpoint
from ..config import PreprocessConfig
from ..conventions import REGIONS, get_scheme
from ..errors import CheckpointError
from .common import outputs_dict, provenance, read_json
from .schemes import _role, channel_names

KNOWN_BUNDLES: Mapping[str, tuple[str, ...]] = {
    "brats_mri_segmentation": ("t1c", "t1n", "t2w", "t2f"),  # its model card: "T1c, T1, T2, FLAIR"
}
"""Published bundles that describe their input channels only in prose: name -> our names, in order."""
ENCODERS: Mapping[str, tuple[str, ...]] = {"SegResNet": ("convInit.", "down_layers.")}
"""Bundle network class -> its encoder's parameter prefixes (what fine-tuning may freeze or scale)."""
PREPROCESSING = {"LoadImaged", "EnsureChannelFirstd", "EnsureTyped", "NormalizeIntensityd"}


def is_bundle(path: Path) -> bool:
    return (path / "configs" / "metadata.json").is_file()


def _config(root: Path) -> tuple[dict[str, Any], Path]:
    for name in ("inference.json", "inference.yaml", "inference.yml"):
        path = root / "configs" / name
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
                data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError) as e:
                raise CheckpointError(f"{path}: not readable ({e.__class__.__name__})") from None
            if isinstance(data, dict):
                return data, path
            raise CheckpointError(f"{path}: expected a mapping")
    raise CheckpointError(f"{root / 'configs'}: no inference.json or inference.yaml")


def _plain(value: Any, where: Path) -> None:
    """Refuse expressions (``$...``) and references (``@...``): network_def is built alone and runs no code."""
    if isinstance(value, str) and value[:1] in ("$", "@", "%"):
        raise CheckpointError(f"{where}: network_def holds the expression or reference {value!r}; only plain"
                              " values are built")
    for v in (value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()):
        _plain(v, where)


class BundleNetwork(nn.Module):
    """A bundle's network, outputs reordered to WT, TC, ET. ``(B, C, H, W, D)`` -> ``(B, 3, H, W, D)``."""

    def __init__(self, *, network_def: Mapping[str, Any], out_order: Sequence[int]):
        super().__init__()
        from monai.bundle import ConfigParser

        try:
            self.net = ConfigParser({"network_def": dict(network_def)}).get_parsed_content("network_def")
        except Exception as e:
            raise CheckpointError(f"network_def does not build: {str(e).splitlines()[0]}") from None
        if not isinstance(self.net, nn.Module):
            raise CheckpointError(f"network_def builds a {type(self.net).__name__}, not a network")
        self.out_order = [int(c) for c in out_order]
        self.size_divisor = 1
        self.encoder_prefixes = tuple(f"net.{p}" for p in ENCODERS.get(type(self.net).__name__, ()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, self.out_order]


def _transforms(config: Mapping[str, Any], where: Path) -> None:
    steps = (config.get("preprocessing") or {}).get("transforms", [])
    names = [str(s.get("_target_", "")).rsplit(".", 1)[-1] for s in steps if isinstance(s, Mapping)]
    odd = [n for n in names if n not in PREPROCESSING]
    norm = [s for s in steps if isinstance(s, Mapping) and str(s.get("_target_", "")).endswith("NormalizeIntensityd")]
    if odd or len(norm) != 1 or not (norm[0].get("nonzero") and norm[0].get("channel_wise")) \
            or any(k in norm[0] for k in ("subtrahend", "divisor")):
        raise CheckpointError(f"{where}: preprocessing {names} is not supported (supported: LoadImaged and"
                              " NormalizeIntensityd(nonzero=True, channel_wise=True))")
    post = (config.get("postprocessing") or {}).get("transforms", [])
    if not any(str(s.get("_target_", "")).endswith("Activationsd") and s.get("sigmoid") for s in post
               if isinstance(s, Mapping)):
        raise CheckpointError(f"{where}: postprocessing has no Activationsd(sigmoid=True); only sigmoid region"
                              " outputs are supported")


def _outputs(metadata: Mapping[str, Any], where: Path) -> list[int]:
    pred = ((metadata.get("network_data_format") or {}).get("outputs") or {}).get("pred") or {}
    names = [str(v) for _, v in sorted((pred.get("channel_def") or {}).items(), key=lambda kv: int(kv[0]))]
    roles = [_role(n) for n in names]
    if sorted(r or "?" for r in roles) != sorted(REGIONS):
        raise CheckpointError(f"{where}: output channels {names} are not tumor core, whole tumor and enhancing tumor")
    return [roles.index(g) for g in REGIONS]


def _weights(root: Path) -> dict[str, torch.Tensor]:
    path = root / "models" / "model.pt"
    if not path.is_file():
        hint = " (model.ts, TorchScript, is not read: use the bundle's model.pt)" if \
            (root / "models" / "model.ts").is_file() else ""
        raise CheckpointError(f"{path}: missing{hint}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: refused or unreadable with weights_only=True"
                              f" ({e.__class__.__name__})") from None
    obj = obj.get("model", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state dict")
    return dict(obj)


def import_bundle(root: str | Path, channels: Sequence[str] | None = None) -> dict[str, Any]:
    """A brats_seg checkpoint dict from a MONAI bundle folder (``channels``: our names of its inputs)."""
    root = Path(root)
    meta_path = root / "configs" / "metadata.json"
    metadata = read_json(meta_path)
    config, config_path = _config(root)
    network_def = config.get("network_def")
    if not isinstance(network_def, Mapping):
        raise CheckpointError(f"{config_path}: no network_def")
    _plain(network_def, config_path)
    _transforms(config, config_path)
    image = ((metadata.get("network_data_format") or {}).get("inputs") or {}).get("image") or {}
    name = str(metadata.get("name") or root.resolve().name)
    given = image.get("channel_def") or ({str(k): v for k, v in enumerate(KNOWN_BUNDLES[name])}
                                        if name in KNOWN_BUNDLES else None)
    if not given and not channels:
        raise CheckpointError(f"{meta_path}: input channels are not named; name them with --channels")
    names = channel_names(given or {str(k): v for k, v in enumerate(channels)}, channels, meta_path)
    inferer = config.get("inferer") or {}
    roi = [int(r) for r in inferer.get("roi_size", [])]
    if not str(inferer.get("_target_", "")).endswith("SlidingWindowInferer") or len(roi) != 3:
        raise CheckpointError(f"{config_path}: inferer must be a SlidingWindowInferer with a 3-D roi_size")
    kwargs = {"network_def": dict(network_def), "out_order": _outputs(metadata, meta_path)}
    network = BundleNetwork(**kwargs)
    try:
        network.net.load_state_dict(_weights(root))
    except RuntimeError as e:
        raise CheckpointError(f"{root / 'models' / 'model.pt'}: weights do not fit network_def:"
                              f" {str(e).splitlines()[0]}") from None
    scheme = get_scheme("brats2021")
    record = provenance("MONAI bundle", str(metadata.get("version", "unknown")), root,
                        [meta_path, config_path, root / "models" / "model.pt"], bundle=name,
                        built_with={"monai": version("monai")})
    ckpt = make_checkpoint(network, model_name="monai_bundle", model_kwargs=kwargs, channels=names,
                           label_scheme=scheme.name,
                           preprocessing=PreprocessConfig(crop=False, normalization="monai_nonzero_channelwise"),
                           patch_size=roi, spacing=None,
                           provenance={"output_activation": "sigmoid", "imported": record})
    ckpt["outputs"] = outputs_dict(scheme.name, "regions", REGIONS, [scheme.region_labels[g] for g in REGIONS])
    ckpt["window_weights"] = "gaussian" if inferer.get("mode") == "gaussian" else "constant"
    return ckpt
