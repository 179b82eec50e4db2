"""The data of a training run: the preprocessing cache, the fold's cases, and what the checkpoint records
about them (channel names, preprocessing, output label scheme, training spacing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import to_dict
from ..conventions import MODALITIES, get_scheme
from ..data.preprocessing.cache import cached_case_ids, cached_config, is_cache, load_cached, read_index
from ..errors import BratsSegError, ConfigError
from ..outputs import Outputs, default_outputs, label_outputs, region_outputs
from . import ddp
from .splits import make_splits, save_splits
from .train_config import TrainConfig


@dataclass
class RunData:
    """``cache``: the preprocessing cache; ``spacing``: training voxel spacing in mm, array-axis order;
    ``skipped``: raw cases left out because they failed a check (case id -> reason; rank 0 only)."""

    cache: Path
    train_ids: list[str]
    val_ids: list[str]
    channels: tuple[str, ...]
    preprocessing: dict
    label_scheme: str
    spacing: tuple[float, float, float]
    skipped: dict[str, str] = field(default_factory=dict)
    outputs: Outputs | None = None
    """The network's outputs (:mod:`brats_seg.outputs`): ``cfg.outputs`` or the output scheme's defaults."""
    unknown: dict[str, list[str]] = field(default_factory=dict)
    """Group -> training cases whose scheme cannot express it (masked out of their loss)."""
    intensity_range: dict | None = None
    """The training cases' raw intensity range (``data.reading.intensity``); None when a cached case records
    no statistics (a cache written before they existed)."""
    passed_on: dict = field(default_factory=dict)
    """What the run's checkpoints carry over from an imported source (:func:`~.follow.adopt_source`)."""


def data_channels(cfg: TrainConfig) -> tuple[str, ...]:
    """Input channel names, known before any work: a cache's (``dataset.json``), the sequences of a raw
    dataset whose every case is of a scheme released with fewer (:data:`RELEASED_CHANNELS`), or the
    canonical four that raw data is preprocessed to; ``cfg.channels`` (an imported source's) for raw data."""
    from ..data.reading.checks import RELEASED_CHANNELS
    from ..data.reading.layouts.discovery import discover_cases
    from ..errors import BratsSegError

    data = Path(cfg.data)
    if is_cache(data):
        return tuple(read_index(data)["channels"])
    if cfg.channels:  # an imported source's sequences, in its order
        return tuple(cfg.channels)
    try:
        hints = {c.label_scheme for c in discover_cases(data)}
    except BratsSegError:  # reported, case by case, when the data is preprocessed
        return MODALITIES
    return RELEASED_CHANNELS.get(hints.pop(), MODALITIES) if len(hints) == 1 else MODALITIES


def _case_properties(cache: Path, case_id: str) -> dict:
    return load_cached(cache, case_id).properties


def output_scheme(cache: Path, case_ids: Sequence[str], explicit: str | None) -> str:
    """The label scheme predictions are written in: ``explicit`` if given, else the one scheme of the
    training cases; cases of several schemes (or none recorded) are an error naming them."""
    if explicit is not None:
        return explicit
    found = Counter()
    for cid in case_ids:
        scheme = _case_properties(cache, cid).get("label_scheme")
        if scheme is None:
            raise ConfigError(f"{cache / f'{cid}.json'}: records no label scheme; re-run brats-seg preprocess")
        found[scheme] += 1
    if len(found) > 1:
        listed = ", ".join(f"{s} ({n} case{'s' if n > 1 else ''})" for s, n in found.most_common())
        raise ConfigError(f"the training cases use several label schemes: {listed}; pass --output-scheme"
                          f" to choose the scheme predictions are written in")
    return next(iter(found))


def resolve_outputs(cache: Path, case_ids: Sequence[str], scheme: str, groups: Sequence[str] | None,
                    loss: str = "dice_bce") -> tuple[Outputs, dict[str, list[str]]]:
    """The outputs (``groups`` of ``scheme``, else its defaults; WT, TC, ET for the softmax ``dice_ce``) and,
    per group, the training cases whose own scheme cannot express it (unknown for them: masked out of their
    loss, not background)."""
    labels = groups is not None and tuple(str(g).upper() for g in groups) == ("LABELS",)
    if loss != "dice_bce" and groups is None:
        groups = ("WT", "TC", "ET")
    try:
        outputs = label_outputs(scheme) if labels else default_outputs(scheme) if groups is None else \
            region_outputs(scheme, groups)
    except BratsSegError as e:
        raise ConfigError(f"outputs: {e}") from None
    unknown: dict[str, list[str]] = {}
    for cid in case_ids:
        case_scheme = get_scheme(_case_properties(cache, cid).get("label_scheme") or scheme)
        if labels and case_scheme.name != outputs.scheme:
            raise ConfigError(f"{cache / f'{cid}.json'}: label outputs of {outputs.scheme} cannot train on a"
                              f" {case_scheme.name} case; use region outputs (they mask what a scheme cannot express)")
        for g in outputs.region_groups:
            if g not in case_scheme.groups:
                unknown.setdefault(g, []).append(cid)
    never = [g for g in outputs.region_groups if len(unknown.get(g, [])) == len(case_ids)]
    if never:
        raise ConfigError(f"{cache}: no training case's label scheme expresses output(s) {', '.join(never)};"
                          " nothing would teach them")
    return outputs, unknown


def training_spacing(cache: Path, case_ids: Sequence[str], preprocessing: dict) -> tuple[float, float, float]:
    """Voxel spacing (mm, array-axis order) the network is trained at: the preprocessing's target
    spacing when set, else the median spacing of the training cases (as nnU-Net's plans do)."""
    if preprocessing.get("spacing") is not None:
        return tuple(float(s) for s in preprocessing["spacing"])
    spacings = []
    for cid in case_ids:
        spacing = _case_properties(cache, cid).get("spacing")
        if spacing is None or len(spacing) != 3:
            raise ConfigError(f"{cache / f'{cid}.json'}: records no voxel spacing; re-run brats-seg preprocess")
        spacings.append(spacing)
    return tuple(float(s) for s in np.median(np.asarray(spacings, dtype=float), axis=0))


def intensity_range(cache: Path, case_ids: Sequence[str]) -> dict | None:
    """:func:`~brats_seg.data.reading.intensity.training_range` of the cached training cases' statistics."""
    from ..data.reading.intensity import training_range

    return training_range([_case_properties(cache, cid).get("intensity") or {} for cid in case_ids])


def prepare_data(cfg: TrainConfig, run: Path, info: ddp.DistInfo) -> RunData:
    """Resolve the cache (preprocessing raw data on rank 0 first; cases failing a check are skipped),
    split the cases, write ``splits.json``."""
    data = Path(cfg.data)
    cache = data if is_cache(data) else Path(cfg.cache) if cfg.cache else run / "cache"
    skipped: dict[str, str] = {}
    if cache != data and info.is_main:
        from ..data.preprocessing.preprocess import preprocess_raw

        skipped = preprocess_raw(data, cache, cfg.preprocess, channels=data_channels(cfg), progress=cfg.progress,
                                 layout=cfg.layout, label_scheme=cfg.label_scheme)
    ddp.barrier(info)
    preprocessing = to_dict(cached_config(cache))  # CaseError naming dataset.json if it records none
    channels = tuple(read_index(cache)["channels"])
    ids = cached_case_ids(cache, labelled=True)
    if not ids:
        raise ConfigError(f"{cache}: no labelled cases in the cache")
    splits = make_splits(ids, cfg.folds, cfg.seed)
    split = splits[cfg.fold if cfg.folds > 1 else 0]
    if info.is_main:
        save_splits(run / "splits.json", splits, cfg.seed)
    scheme = output_scheme(cache, split["train"], cfg.output_scheme)
    outputs, unknown = resolve_outputs(cache, split["train"], scheme, cfg.outputs, cfg.loss)
    if info.is_main:
        print(f"outputs: {outputs.kind} {' '.join(outputs.groups)} written back as {outputs.scheme} values"
              f" {' '.join(map(str, outputs.values))}")
        for g, ids in unknown.items():
            listed = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            print(f"outputs: {g} is unknown for {len(ids)} of {len(split['train'])} training case(s) (their scheme"
                  f" cannot express it): masked out of their loss ({listed})")
    return RunData(cache, split["train"], split["val"], channels, preprocessing, scheme,
                   training_spacing(cache, split["train"], preprocessing), skipped, outputs, unknown,
                   intensity_range(cache, split["train"]))


__all__ = ["RunData", "data_channels", "prepare_data", "output_scheme", "resolve_outputs", "training_spacing"]
