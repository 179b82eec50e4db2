"""Fine-tuning a trained network on a new site: the run takes the source checkpoint's network.

``TrainConfig.follow_init`` (set by ``--recipe finetune``) makes a run with ``--init-from SOURCE``
build the SOURCE's architecture (registry name and keyword arguments), preprocess as it did (its
recorded preprocessing: normalization, target spacing), cut its patch size and train its loss, so every weight of
SOURCE lands in the new network and the first step starts from SOURCE's predictions. Settings
given explicitly for the run (``--patch``, ``--loss``, ...) are replaced; what was replaced is printed.

A model trained elsewhere (:mod:`brats_seg.importers`: an nnU-Net v2 folder, a MONAI bundle, or a
checkpoint ``brats-seg models import`` wrote) is always followed, ``--recipe finetune`` or not: its
network is none of the registry's. The run builds the imported network itself (weights loaded by
name, strictly), feeds it the source's sequences in its order, normalized, cropped and resampled
as the source's own pipeline does, trains its outputs (sigmoid regions with Dice + BCE, softmax
labels with Dice + CE) in its label scheme, and its checkpoints carry the source's window weights
and import record (``provenance.imported``) plus ``provenance.fine_tuned``, so they predict
through the same imported pipeline.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..checkpoint import load_checkpoint, preprocessing_of
from ..errors import BratsSegError, ConfigError
from ..importers import IMPORTED_NETWORKS, import_source, source_kind
from ..outputs import outputs_of
from .train_config import TrainConfig

_BUILT_BY_THE_RUN = ("in_channels", "out_channels", "preset", "deep_supervision")
"""Keyword arguments the trainer passes to the registry itself (``build_network``)."""


@functools.lru_cache(maxsize=2)
def _read_source(path: str) -> Mapping[str, Any]:
    """The checkpoint dict of ``path``: a brats_seg checkpoint file, or an imported model's folder."""
    return import_source(path) if Path(path).is_dir() else load_checkpoint(path)


def is_imported(ckpt: Mapping[str, Any]) -> bool:
    """A checkpoint dict of a model trained elsewhere (its network is built by :mod:`brats_seg.importers`)."""
    return ckpt["model"].get("name") in IMPORTED_NETWORKS


def imported_settings(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The TrainConfig fields that make a run fine-tune the imported network of ``ckpt`` as it is."""
    outputs = outputs_of(ckpt)
    labels = outputs.kind == "labels"
    return {"model": str(ckpt["model"]["name"]), "model_kwargs": dict(ckpt["model"].get("kwargs") or {}),
            "patch": tuple(int(p) for p in ckpt["patch_size"]), "preprocess": preprocessing_of(ckpt),
            "channels": tuple(ckpt["channels"]), "deep_supervision": False, "follow_init": True,
            "output_scheme": outputs.scheme, "outputs": ("labels",) if labels else tuple(outputs.groups),
            "loss": "dice_ce" if labels else "dice_bce"}


def source_settings(path: str) -> dict[str, Any]:
    """The TrainConfig fields a fine-tuning run takes from the checkpoint (or imported folder) at ``path``."""
    ckpt = _read_source(str(path))
    if is_imported(ckpt):
        return imported_settings(ckpt)
    kwargs = dict(ckpt["model"].get("kwargs") or {})
    settings: dict[str, Any] = {
        "model": str(ckpt["model"]["name"]),
        "model_kwargs": {k: v for k, v in kwargs.items() if k not in _BUILT_BY_THE_RUN},
        "patch": tuple(int(p) for p in ckpt["patch_size"]),
    }
    for key in ("preset", "deep_supervision"):
        if key in kwargs:
            settings[key] = kwargs[key]
    settings["preprocess"] = preprocessing_of(ckpt)  # as recorded: a target spacing, or the cases' own
    source_cfg = (ckpt.get("provenance") or {}).get("config") or {}
    if isinstance(source_cfg.get("loss"), str) and ckpt.get("label_scheme") != "none":  # not a pretraining task's
        settings["loss"] = source_cfg["loss"]
    return settings


def _imported_path(path: str | None) -> bool:
    if not path:
        return False
    if Path(path).is_dir():
        return source_kind(path) is not None
    try:
        return is_imported(_read_source(str(path)))
    except BratsSegError:  # not one of our checkpoints (a plain weights file): transfer.load_pretrained reads it
        return False


def follow_source(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the network, preprocessing, patch and loss of ``cfg.init_from`` when ``cfg.follow_init`` or
    the source is an imported model; ``cfg`` itself otherwise. Raises :class:`ConfigError` for
    ``follow_init`` without ``init_from``."""
    if not (cfg.follow_init or _imported_path(cfg.init_from)):
        return cfg
    if not cfg.init_from:
        raise ConfigError("fine-tuning (follow_init, e.g. --recipe finetune) needs --init-from SOURCE")
    settings = source_settings(cfg.init_from)
    changed = [k for k, v in settings.items() if getattr(cfg, k) != v and k != "follow_init"]
    if changed:
        print(f"fine-tuning {cfg.init_from}: its {', '.join(changed)} replace(s) this run's")
    return dataclasses.replace(cfg, **settings)


def imported_network(cfg: TrainConfig) -> nn.Module:
    """The imported network ``cfg.model`` built from ``cfg.model_kwargs`` (weights as initialized)."""
    network = IMPORTED_NETWORKS[cfg.model](cfg.model_kwargs)
    network.build_kwargs = dict(cfg.model_kwargs)
    return network


def _trained_as(outputs) -> tuple:
    """What must match for a network's outputs to train on data: scheme, kind, and the regions or labels."""
    return outputs.scheme, outputs.kind, set(outputs.groups if outputs.kind == "regions" else outputs.values)


def adopt_source(cfg: TrainConfig, data) -> None:
    """For an imported ``cfg.init_from``: check the run's data against it and give ``data`` (a
    :class:`~.run_data.RunData`) the source's outputs (its channel order: the targets follow the network's
    channels) and ``passed_on``, what the checkpoints carry over (``window_weights``, provenance ``imported``
    and ``fine_tuned``). Nothing for our own sources. :class:`ConfigError` when the data's channels are not
    the source's, or its outputs are not the source's (another scheme, kind, groups or labels)."""
    if not cfg.init_from or cfg.model not in IMPORTED_NETWORKS:
        return
    ckpt = _read_source(str(cfg.init_from))
    theirs, ours = outputs_of(ckpt), data.outputs
    if tuple(data.channels) != tuple(ckpt["channels"]):
        raise ConfigError(f"{cfg.init_from}: its network takes {', '.join(ckpt['channels'])}; this run's data has"
                          f" {', '.join(data.channels)}")
    if _trained_as(theirs) != _trained_as(ours):
        raise ConfigError(f"{cfg.init_from}: its outputs ({theirs.kind} {' '.join(theirs.groups)} in {theirs.scheme})"
                          f" cannot be trained on this data's ({ours.kind} {' '.join(ours.groups)} in {ours.scheme})")
    provenance = ckpt.get("provenance") or {}
    data.outputs = theirs
    data.passed_on = {"window_weights": ckpt.get("window_weights", "gaussian"),
                      "provenance": {"imported": provenance.get("imported"),
                                     "fine_tuned": {"from": str(cfg.init_from),
                                                    "previously": provenance.get("fine_tuned")}}}


def init_from_source(model: nn.Module, cfg: TrainConfig, channels, preprocessing) -> str:
    """Load ``cfg.init_from``'s weights into ``model``; the report's text. An imported source's network is the
    run's own: every tensor is loaded by name (strict); others through
    :func:`~brats_seg.training.weight_transfer.load_pretrained`."""
    if cfg.model in IMPORTED_NETWORKS:
        state = _read_source(str(cfg.init_from))["state_dict"]
        model.load_state_dict(state, strict=True)
        return f"init-from {cfg.init_from}: loaded all {len(state)} tensors of the imported {cfg.model} network"
    from .weight_transfer import load_pretrained

    return load_pretrained(model, cfg.init_from, channels=channels, preprocessing=preprocessing).format()
