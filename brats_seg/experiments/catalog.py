"""The comparison experiments by name (``brats-seg experiment NAME``) and how one is run.

Each experiment module defines ``PRESETS`` (``smoke``: seconds on a CPU inside the test suite;
``cpu``: real data split by ``--data`` folder, about 20 minutes on one CPU core;
``full``: a GPU and real data) and ``run(data, out, preset=..., ...) -> dict``; the steps they
share live in :mod:`.datasets` (split, caches), :mod:`.arms` (one training under a budget),
:mod:`.heldout_scores` (held-out scores), :mod:`.tables` and :mod:`.figures` (what they write) and
:mod:`.runtime` (threads, timing, progress).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

EXPERIMENTS: dict[str, str] = {
    "architectures": "brats_seg.experiments.architectures",
    "transfer": "brats_seg.experiments.transfer",
    "ensembles": "brats_seg.experiments.ensembles",
    "modalities": "brats_seg.experiments.modalities",
}
"""Experiment name -> module defining ``PRESETS`` and ``run``."""


def resolve_preset(presets: Mapping[str, Any], preset: str, experiment: str) -> Any:
    """``presets[preset]``, or a :class:`ConfigError` naming the valid presets."""
    if preset not in presets:
        raise ConfigError(f"experiment {experiment!r} has no preset {preset!r}; choose one of {', '.join(presets)}")
    return presets[preset]


def experiment_module(name: str):
    """The module of experiment ``name`` (``PRESETS``, ``run``); unknown names raise :class:`ConfigError`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])


def run_experiment(name: str, data: str | Path | Sequence[str | Path] | None, out: str | Path, preset: str = "smoke", *,
                   device: str | None = None, progress: bool = True, layout: str | None = None,
                   label_scheme: str | None = None, **options: Any) -> dict[str, Any]:
    """Run experiment ``name`` on ``data`` (None: synthesize the preset's dataset) into ``out``.
    ``layout``/``label_scheme``: how the ``data`` folders are read (None: detected), set on the preset's
    :class:`~.datasets.DataPlan`."""
    module = experiment_module(name)
    if layout is not None or label_scheme is not None:
        from ..conventions import get_scheme
        from ..data.reading.layouts import get_layout

        if layout is not None:
            get_layout(layout)  # an unknown name is one line, before any data is synthesized
        if label_scheme is not None:
            get_scheme(label_scheme)
        cfg = resolve_preset(module.PRESETS, preset, name)
        options["config"] = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, layout=layout,
                                                                              label_scheme=label_scheme))
    return module.run(data, out, preset=preset, device=device, progress=progress, **options)
