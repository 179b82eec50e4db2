"""Typed configurations as dataclasses, saved beside every result as YAML.

A config is plain values (numbers, strings, lists, nested configs), so it goes
into checkpoints as a dict and loads back with ``yaml.safe_load`` /
``torch.load(weights_only=True)``. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError
from .files import write_text

T = TypeVar("T")

DEFAULT_OVERLAP = 0.5
"""Sliding-window overlap (share of a window shared with its neighbour) wherever one is not given: prediction,
validation, ``--overlap``, the experiments. Its one home."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a dict of plain values (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def from_dict(cls: type[T], data: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build dataclass ``cls`` from a dict, converting lists back to tuples and
    nested dicts to nested configs. Unknown keys raise :class:`ConfigError`."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, source=f"{source}.{name}")
        elif isinstance(value, list) and "tuple" in str(hint).lower():
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def replace(cfg: T, **changes: Any) -> T:
    """A copy of ``cfg`` with the given fields changed; ``None`` values are ignored
    (so unset command-line flags do not override a YAML file)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping of settings in a YAML file (``yaml.safe_load``; an empty file is ``{}``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data or {}


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a config of type ``cls`` from a YAML file (``yaml.safe_load``)."""
    return from_dict(cls, read_yaml(path), source=str(path))


def dump_yaml(cfg: Any, path: str | Path) -> None:
    """Write a config as YAML (atomically: temporary file, then rename)."""
    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """How raw volumes become network input; stored in every checkpoint.

    ``normalization``: ``zscore`` (inside the brain mask, the default: the
    background is zero by BraTS construction and would otherwise dominate the
    statistics), ``percentile`` (clip to ``clip_percentiles`` inside the brain,
    then scale to [0, 1]) or ``none``. ``spacing``: target voxel spacing in mm,
    or ``None`` to keep the input's.
    """

    crop: bool = True
    normalization: str = "zscore"
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    n4: bool = False
    spacing: tuple[float, float, float] | None = None
