"""Sequence subsets: which of a model's input channels a case has, and modality dropout in training.

A *subset* is a tuple of canonical channel names in the model's channel order, e.g.
``("t1c", "t2f")``; written ``"t1c+t2f"``. Four sequences give 15 non-empty subsets.

A missing channel is given to the network as :data:`MISSING_VALUE` everywhere, in training
(modality dropout) and in prediction alike. It is 0 *after* normalization: every normalizer
writes 0 outside the brain, and under z-score (the default) 0 inside the brain is the channel's
mean there, so a missing sequence reads as "average tissue, no contrast". This is the zero-filling
of HeMIS (Havaei et al. 2016), U-HVED (Dorent et al. 2019) and RFNet (Ding et al. 2021), whose
inputs are z-scored too. (Under ``percentile`` normalization 0 is the darkest brain intensity;
training and prediction still agree, which is what matters.)

Modality dropout (:class:`ModalityDropout`): with probability ``p`` a training sample keeps only
a subset drawn uniformly from the allowed ones (all 15 by default; RFNet, Ding et al. 2021, draws
its masks the same way, with ``p`` = 1), its other channels set to :data:`MISSING_VALUE` after
augmentation; otherwise it keeps every channel. It differs from RFNet and U-HVED in dropping the
*input* channels of one ordinary network, not features of per-sequence encoders; the network is
not told which channels are missing (no presence input: that was not built or measured). The draw
is a pure function of ``(seed, sample index)`` on its own random stream, so the patches and
augmentation are those of the same run without dropout, and a resumed run draws exactly what an
uninterrupted one does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..conventions import MODALITIES, canonical_modality
from ..errors import BratsSegError, ConfigError

MISSING_VALUE = 0.0
"""What a missing channel holds, after normalization (the channel's brain mean under z-score)."""

DROPOUT_STREAM = 0x5EC
"""Third entropy word of the dropout generator, ``default_rng([seed, index, DROPOUT_STREAM])``: a stream
apart from the patch's own ``default_rng([seed, index])``."""

Subset = tuple[str, ...]


def subset_name(subset: Sequence[str]) -> str:
    """``("t1c", "t2f")`` -> ``"t1c+t2f"``."""
    return "+".join(subset)


def all_subsets(channels: Sequence[str] = MODALITIES) -> list[Subset]:
    """Every non-empty subset of ``channels``: singles first, then pairs, ..., the complete set last;
    within a size, in the order of ``channels`` (15 for four sequences)."""
    channels = tuple(channels)
    return [c for k in range(1, len(channels) + 1) for c in itertools.combinations(channels, k)]


def ordered(names: Sequence[str], channels: Sequence[str] = MODALITIES) -> Subset:
    """``names`` in the order of ``channels`` (each kept once)."""
    return tuple(c for c in channels if c in set(names))


def parse_subset(text: str | Sequence[str], channels: Sequence[str] = MODALITIES) -> Subset:
    """``"t1c+t2f"``, ``"flair,t1ce"`` or a list of names -> a subset of ``channels`` in their order.

    Raises :class:`ConfigError` for an empty subset, an unknown name, or a channel the model lacks."""
    parts = [p for p in re.split(r"[+,\s]+", text.strip())] if isinstance(text, str) else [str(p) for p in text]
    parts = [p for p in parts if p]
    if not parts:
        raise ConfigError(f"empty sequence subset {text!r}; write e.g. t1c+t2f")
    names = []
    for p in parts:
        try:
            names.append(canonical_modality(p))
        except BratsSegError as e:
            raise ConfigError(f"sequence subset {text!r}: {e}") from None
    outside = [n for n in names if n not in channels]
    if outside:
        raise ConfigError(f"sequence subset {text!r}: {', '.join(outside)} is not one of the input channels"
                          f" ({', '.join(channels)})")
    return ordered(names, channels)


def trained_subsets(channels: Sequence[str], p: float, subsets: Sequence[str] | None) -> list[Subset]:
    """The subsets a training run shows the network: the allowed ones under dropout (``p > 0``), and the
    complete set whenever some samples keep every channel (``p < 1``); in :func:`all_subsets` order."""
    channels = tuple(channels)
    seen = {channels} if p < 1 else set()
    if p > 0:
        seen |= set(allowed_subsets(channels, subsets))
    return [s for s in all_subsets(channels) if s in seen]


def allowed_subsets(channels: Sequence[str], subsets: Sequence[str] | None) -> list[Subset]:
    """The kept subsets dropout may draw: ``subsets`` parsed (duplicates refused), or all of them."""
    if subsets is None:
        return all_subsets(channels)
    parsed = [parse_subset(s, channels) for s in subsets]
    if not parsed:
        raise ConfigError("subsets is an empty list; leave it out to allow all subsets")
    seen = set()
    for s in parsed:
        if s in seen:
            raise ConfigError(f"sequence subset {subset_name(s)} is listed twice")
        seen.add(s)
    return parsed


@dataclass(frozen=True)
class ModalityDropout:
    """Per-sample channel dropout (see the module docstring). ``channels``: the input channels in order;
    ``p``: probability that a sample keeps a random subset; ``subsets``: the subsets it draws from."""

    channels: Subset
    p: float
    subsets: tuple[Subset, ...]

    def __post_init__(self):
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"modality dropout probability must be in [0, 1], got {self.p}")
        if not self.subsets or any(not s or not set(s) <= set(self.channels) for s in self.subsets):
            raise ConfigError(f"modality dropout subsets must be non-empty subsets of {', '.join(self.channels)}")

    @classmethod
    def from_config(cls, channels: Sequence[str], p: float, subsets: Sequence[str] | None) -> ModalityDropout | None:
        """The dropout a training config asks for, or None when ``p`` is 0 (``subsets`` then refused:
        they would silently do nothing)."""
        if p == 0:
            if subsets is not None:
                raise ConfigError("subsets given but modality_dropout is 0; set --modality-dropout P as well")
            return None
        return cls(tuple(channels), float(p), tuple(allowed_subsets(channels, subsets)))

    def draw(self, seed: int, index: int) -> np.ndarray:
        """Which channels sample ``index`` keeps: ``(C,)`` bool, never all False."""
        rng = np.random.default_rng([int(seed), int(index), DROPOUT_STREAM])
        keep = self.channels
        if rng.random() < self.p:
            keep = self.subsets[int(rng.integers(len(self.subsets)))]
        return np.array([c in keep for c in self.channels])


def drop_channels(image, present) -> None:
    """Set the channels not ``present`` to :data:`MISSING_VALUE`, in place. ``image`` ``(C, *S)`` with
    ``present`` ``(C,)``, or ``(B, C, *S)`` with ``(B, C)`` (tensors or arrays)."""
    missing = ~present if isinstance(present, np.ndarray) else present.logical_not()
    image[missing] = MISSING_VALUE
