"""The model registry: one canonical name per architecture, visible in one place.

::

    from brats_seg.models.registry import build_model, list_models
    net = build_model("nnunet", preset="tiny", deep_supervision=True)
    net.build_kwargs   # {"in_channels": 4, "out_channels": 3, "preset": "tiny", "deep_supervision": True,
                       #  "features": [4, 8, 16], "strides": [1, 2, 2]}
    same = build_model("nnunet", **net.build_kwargs)   # what a checkpoint stores and rebuilds

A model module registers a builder with :func:`register_model`; the builder takes
``in_channels, out_channels, deep_supervision`` and the keyword arguments of a
preset (``tiny`` for CPU tests, ``base`` for BraTS), which ``build_model``'s
``**kwargs`` override. Keyword values must be plain (numbers, strings, booleans,
lists, dicts) so that a checkpoint loads with ``weights_only=True``.

The model modules are listed in :data:`MODEL_MODULES` and imported on first use
(no folder scanning, cf. timm's ``_registry.py``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import ConfigError

MODEL_MODULES: tuple[str, ...] = (
    "unet3d", "vnet", "resunet", "segresnet", "nnunet", "backbone", "vnas",
)
"""Modules of ``brats_seg.models`` that register models, in listing order."""

PRESETS: tuple[str, ...] = ("tiny", "base")


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: builder, presets, one-line description and the paper."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    paper: str
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        """Keyword arguments the builder accepts besides in/out channels and deep supervision."""
        params = inspect.signature(self.builder).parameters
        return [p for p in params if p not in ("in_channels", "out_channels", "deep_supervision")
                and params[p].kind is inspect.Parameter.KEYWORD_ONLY]


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register_model(name: str, *, description: str, paper: str,
                   presets: Mapping[str, Mapping[str, Any]] | None = None) -> Callable:
    """Decorator registering ``builder(*, in_channels, out_channels, deep_supervision, **preset_kwargs)``.

    Registering a name twice is an error (entries are never mutated).
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ConfigError(f"model {name!r} is already registered")
        given = dict(presets or {"base": {}})
        missing = [p for p in PRESETS if p not in given]
        if missing:
            raise ConfigError(f"model {name!r}: presets {missing} missing (every model has {', '.join(PRESETS)})")
        _REGISTRY[name] = ModelSpec(name, builder, description, paper, {k: dict(v) for k, v in given.items()})
        return builder

    return decorator


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in MODEL_MODULES:
            importlib.import_module(f"{__package__}.{module}")


def list_models() -> list[str]:
    """Registered model names, in listing order."""
    _ensure_loaded()
    order = {m: i for i, m in enumerate(MODEL_MODULES)}
    specs = sorted(_REGISTRY.values(), key=lambda s: order.get(s.builder.__module__.rsplit(".", 1)[-1], len(order)))
    return [s.name for s in specs]  # sorted() is stable: registration order within a module


def model_info(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` (description, paper, presets); unknown names raise ConfigError."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint}; valid models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _plain(value: Any, where: str) -> Any:
    """Copy ``value`` as plain JSON-like data (tuples become lists); refuse anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f"model argument {where} must be a plain value (number, string, list, dict),"
                      f" got {type(value).__name__}; checkpoints store model arguments as plain data")


def build_model(name: str, *, in_channels: int = 4, out_channels: int = 3, preset: str = "base",
                deep_supervision: bool = False, **kwargs: Any) -> nn.Module:
    """Build registered model ``name``: input ``(B, in_channels, H, W, D)`` -> logits ``(B, out_channels, H, W, D)``.

    ``preset`` picks the size (``tiny`` or ``base``); ``kwargs`` override the preset's arguments.
    The returned module carries ``registry_name`` and ``build_kwargs`` (plain values: the preset
    name and its resolved arguments), and ``build_model(name, **module.build_kwargs)`` rebuilds
    the same network; store ``build_kwargs`` in checkpoints.
    """
    spec = model_info(name)
    if preset not in spec.presets:
        raise ConfigError(f"model {name!r} has no preset {preset!r}; choose one of {', '.join(spec.presets)}")
    if int(in_channels) < 1 or int(out_channels) < 1:
        raise ConfigError(f"model {name!r}: in_channels and out_channels must be >= 1")
    valid = spec.arguments()
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise ConfigError(f"model {name!r} has no argument {', '.join(map(repr, unknown))};"
                          f" valid: in_channels, out_channels, preset, deep_supervision, {', '.join(valid)}")
    overrides = {k: _plain(v, k) for k, v in kwargs.items()}
    params = {**spec.presets[preset], **overrides}
    model = spec.builder(in_channels=int(in_channels), out_channels=int(out_channels),
                         deep_supervision=bool(deep_supervision), **params)
    model.registry_name = name
    # resolved preset values are stored too, so a checkpoint rebuilds even if a preset changes later
    model.build_kwargs = {"in_channels": int(in_channels), "out_channels": int(out_channels), "preset": preset,
                          "deep_supervision": bool(deep_supervision), **_plain(params, "preset")}
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
