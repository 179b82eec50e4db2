"""The data of an experiment: a synthetic dataset when none is given, a seeded held-out split, and
the training caches (every arm of a comparison trains on the same preprocessed cases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import PreprocessConfig
from ..conventions import MODALITIES
from ..errors import ConfigError


@dataclass(frozen=True)
class DataPlan:
    """How the experiment's data is made or split.

    ``n_test``: held-out cases (never trained on); a float in (0, 1) is a fraction of the labeled
    cases (at least one, and never so many that fewer than ``min_train`` remain).
    ``synth_cases``/``synth_spacing``: the dataset synthesized when no ``--data`` is given
    (``synth_spacing`` mm; 4 mm gives 60x60x39 volumes).
    ``preprocess``: how every training cache and every prediction preprocesses the scans.
    """

    n_test: int | float = 2
    synth_cases: int = 6
    synth_spacing: float = 4.0
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    seed: int = 0


@dataclass
class Split:
    """Labeled cases of a dataset split into training and held-out (test) cases."""

    train: list  # list[Case]
    test: list  # list[Case]
    root: Path

    def describe(self) -> str:
        return f"{len(self.train)} training and {len(self.test)} held-out cases from {self.root}"


def ensure_data(data: str | Path | None, out: Path, plan: DataPlan, *, progress: bool = True) -> Path:
    """``data`` itself, or (when None) a synthetic dataset written to ``out/data`` once."""
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise ConfigError(f"{path}: data folder not found")
        return path
    from ..data.synth import synthesize_dataset

    folder = out / "data"
    if not (folder / "synth.json").is_file():
        synthesize_dataset(folder, plan.synth_cases, seed=plan.seed, spacing=plan.synth_spacing, progress=progress)
    return folder


def split_dataset(root: str | Path, plan: DataPlan, *, min_train: int = 1) -> Split:
    """Labeled cases of ``root`` split into training and ``plan.n_test`` held-out cases.

    The held-out cases are drawn by a seeded permutation of the sorted case ids, so the
    same folder and seed always give the same split.
    """
    from ..data.layouts import discover_cases

    cases = [c for c in discover_cases(root)
             if c.label is not None and not c.problems and all(m in c.images for m in MODALITIES)]
    n_test = plan.n_test
    if isinstance(n_test, float) and 0 < n_test < 1:
        n_test = min(max(1, round(n_test * len(cases))), len(cases) - min_train)
    need = max(n_test, 1) + min_train
    if len(cases) < need:
        raise ConfigError(f"{root}: {len(cases)} usable labeled case(s); this experiment needs at least {need}"
                          f" ({max(n_test, 1)} held out + {min_train} to train)")
    order = np.random.default_rng(plan.seed).permutation(len(cases))
    test_idx = set(order[: int(n_test)].tolist())
    return Split([c for i, c in enumerate(cases) if i not in test_idx],
                 [c for i, c in enumerate(cases) if i in test_idx], Path(root))


def build_cache(cases: Sequence, folder: Path, plan: DataPlan, *, progress: bool = False) -> Path:
    """Preprocess ``cases`` into the cache ``folder`` (idempotent); raise if any case failed."""
    from ..data.preprocess import preprocess_dataset

    report = preprocess_dataset(list(cases), folder, plan.preprocess, workers=1, progress=progress)
    if getattr(report, "failed", None):
        first = next(iter(report.failed.items()))
        raise ConfigError(f"preprocessing failed for {len(report.failed)} case(s), e.g. {first[0]}: {first[1]}")
    return folder
