"""Fine-tuning a trained network on a new site: the run takes the source checkpoint's network.

``TrainConfig.follow_init`` (set by ``--recipe finetune``) makes a run with ``--init-from SOURCE``
build the SOURCE's architecture (registry name and keyword arguments), preprocess as it did (its
recorded preprocessing: normalization, target spacing), cut its patch size and train its loss, so every weight of
SOURCE lands in the new network and the first step starts from SOURCE's predictions. Settings
given explicitly for the run (``--patch``, ``--loss``, ...) are replaced; what was replaced is printed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..checkpoint import load_checkpoint, preprocessing_of
from ..errors import ConfigError
from .train_config import TrainConfig

_BUILT_BY_THE_RUN = ("in_channels", "out_channels", "preset", "deep_supervision")
"""Keyword arguments the trainer passes to the registry itself (``build_network``)."""


def source_settings(path: str) -> dict[str, Any]:
    """The TrainConfig fields a fine-tuning run takes from the checkpoint at ``path``."""
    ckpt = load_checkpoint(path)
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


def follow_source(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the network, preprocessing, patch and loss of ``cfg.init_from`` when ``cfg.follow_init``;
    ``cfg`` itself otherwise. Raises :class:`ConfigError` for ``follow_init`` without ``init_from``."""
    if not cfg.follow_init:
        return cfg
    if not cfg.init_from:
        raise ConfigError("fine-tuning (follow_init, e.g. --recipe finetune) needs --init-from SOURCE")
    settings = source_settings(cfg.init_from)
    changed = [k for k, v in settings.items() if getattr(cfg, k) != v]
    if changed:
        print(f"fine-tuning {cfg.init_from}: its {', '.join(changed)} replace(s) this run's")
    return dataclasses.replace(cfg, **settings)
