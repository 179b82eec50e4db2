"""Models trained elsewhere (nnU-Net v2, MONAI bundles), read from their own files into brats_seg checkpoint dicts.

``import_source(path)`` turns an nnU-Net v2 trained model folder or a MONAI bundle folder into the
same checkpoint dict ``brats-seg train`` writes (plus ``outputs``, ``window_weights`` and
``provenance.imported``); ``network_from_checkpoint`` rebuilds the network of such a dict.
``brats_seg.inference.members.load_member`` is the one loader that reaches this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import CheckpointError


def _nnunet_network(kwargs: Mapping[str, Any]) -> nn.Module:
    from .nnunet_network import NNUNetFolds

    return NNUNetFolds(**kwargs)


def _bundle_network(kwargs: Mapping[str, Any]) -> nn.Module:
    from .monai_bundle import BundleNetwork

    return BundleNetwork(**kwargs)


IMPORTED_NETWORKS: Mapping[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "nnunet_v2": _nnunet_network,
    "monai_bundle": _bundle_network,
}
"""``ckpt["model"]["name"]`` of an imported checkpoint -> builder of its network from the kwargs."""


def source_kind(path: str | Path) -> str | None:
    """"nnunet" or "bundle" for a folder we can import, None for anything else."""
    from .monai_bundle import is_bundle
    from .nnunet import is_nnunet_folder

    if is_nnunet_folder(Path(path)):
        return "nnunet"
    return "bundle" if is_bundle(Path(path)) else None


def import_source(path: str | Path, *, folds: Sequence[str] | None = None, checkpoint: str | None = None,
                  channels: Sequence[str] | None = None) -> dict[str, Any]:
    """The checkpoint dict of the nnU-Net v2 trained model folder or MONAI bundle folder at ``path``."""
    from .monai_bundle import import_bundle
    from .nnunet import import_nnunet

    kind = source_kind(path)
    if kind == "nnunet":
        return import_nnunet(path, folds=folds, checkpoint=checkpoint, channels=channels)
    if kind == "bundle":
        if folds or checkpoint:
            raise CheckpointError(f"{path}: --folds/--checkpoint-name apply to nnU-Net folders, not MONAI bundles")
        return import_bundle(path, channels=channels)
    raise CheckpointError(f"{path}: neither an nnU-Net v2 trained model folder (dataset.json, plans.json, fold_*/)"
                          " nor a MONAI bundle (configs/metadata.json, configs/inference.json, models/model.pt)")


def network_from_checkpoint(ckpt: Mapping[str, Any], *, strict: bool = True) -> nn.Module:
    """The network of an imported checkpoint dict with its weights loaded (eval mode)."""
    spec = ckpt["model"]
    network = IMPORTED_NETWORKS[spec["name"]](spec.get("kwargs", {}))
    try:
        network.load_state_dict(ckpt["state_dict"], strict=strict)
    except RuntimeError as e:
        raise CheckpointError(f"imported weights do not fit {spec['name']}: {str(e).splitlines()[0]}") from None
    return network.eval()
