"""Named training recipes: documented sets of :class:`~brats_seg.training.train_config.TrainConfig` settings.

A recipe is one YAML file shipped in the package, ``brats_seg/recipes/NAME.yaml``
(plain data, read with ``yaml.safe_load``); adding a recipe is adding a file::

    description: one line for `brats-seg train --list-recipes`
    reference: where its numbers come from
    settings:              # TrainConfig fields; checked like any config (unknown keys fail)
      optimizer: sgd
      augmentation: {pipeline: nnunet, p_contrast: 0.15}

Use: ``brats-seg train DATA --recipe NAME --out RUN``, ``TrainConfig(recipe=NAME, ...)``
or ``recipe: NAME`` inside a ``--config`` YAML. Precedence: recipe < ``--config`` YAML <
command-line flags; in Python, the arguments given to ``TrainConfig`` beat the recipe.
Nested blocks (``augmentation``, ``preprocess``, ``model_kwargs``) given as YAML merge
key by key into the recipe's (``augmentation: {p_flip: 0}`` changes one setting); a
``TrainConfig(augmentation=AugmentConfig(...))`` object replaces the block. Settings
that belong to one run (data, out, cache, resume, init_from) are not allowed in a recipe.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import read_yaml
from ..errors import ConfigError

RECIPE_DIR = Path(__file__).resolve().parent.parent / "recipes"
"""Where the shipped recipes live: one ``NAME.yaml`` per recipe."""

RUN_KEYS = ("data", "out", "cache", "resume", "init_from", "recipe")
"""TrainConfig fields that belong to one run, never to a recipe."""


@dataclass(frozen=True)
class Recipe:
    """A named set of settings: ``settings`` maps TrainConfig field names to plain YAML values."""

    name: str
    description: str
    reference: str
    settings: Mapping[str, Any]
    path: Path


def load_recipe(path: str | Path) -> Recipe:
    """Read and check one recipe file (``yaml.safe_load``); :class:`ConfigError` names the file and the problem."""
    path = Path(path)
    data = read_yaml(path, "recipe file")
    keys = {"description", "reference", "settings"}
    if set(data) != keys:
        raise ConfigError(f"{path}: a recipe is a mapping with exactly {', '.join(sorted(keys))}; found {sorted(data)}")
    if not isinstance(data["settings"], dict):
        raise ConfigError(f"{path}: settings must be a mapping of TrainConfig fields")
    run_keys = sorted(set(data["settings"]) & set(RUN_KEYS))
    if run_keys:
        raise ConfigError(f"{path}: {', '.join(run_keys)} belong(s) to one run, not to a recipe")
    return Recipe(path.stem, str(data["description"]), str(data["reference"]), data["settings"], path)


@functools.cache
def recipes() -> dict[str, Recipe]:
    """The registry: recipe name -> :class:`Recipe`, one per file in :data:`RECIPE_DIR`."""
    return {p.stem: load_recipe(p) for p in sorted(RECIPE_DIR.glob("*.yaml"))}


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``; an unknown name lists the valid ones."""
    known = recipes()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown recipe {name!r}{hint}; valid recipes: {', '.join(known)}")
    return known[name]


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``override``; where both hold a mapping, merged key by key (recursively)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


def list_recipes() -> list[dict[str, str]]:
    """``[{"name", "description", "reference"}]`` for every recipe, by name."""
    return [{"name": r.name, "description": r.description, "reference": r.reference} for r in recipes().values()]


__all__ = ["Recipe", "RECIPE_DIR", "RUN_KEYS", "load_recipe", "recipes", "get_recipe", "merge_settings",
           "list_recipes"]
