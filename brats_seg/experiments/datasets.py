"""The data of an experiment: a synthetic dataset when none is given, a seeded held-out split, and
the training caches (every arm of a comparison trains on the same preprocessed cases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    ``split``: ``random`` (the seeded ``n_test`` draw over the labeled cases of every ``--data``
    folder) or ``by_folder`` (a fixed split: the cases of the first ``--data`` folder train, those of
    the other folders are held out; ``n_test`` unused).
    ``layout``/``label_scheme``: how the ``--data`` folders are read (None: detected).
    """

    n_test: int | float = 2
    split: str = "random"
    synth_cases: int = 6
    synth_spacing: float = 4.0
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    seed: int = 0
    layout: str | None = None
    label_scheme: str | None = None


SPLITS: tuple[str, ...] = ("random", "by_folder")
"""Valid :attr:`DataPlan.split` values."""

Roots = Path | tuple[Path, ...]
"""One dataset folder, or several (``--data A B ...``) whose labeled cases are pooled."""


@dataclass
class Split:
    """Labeled cases of a dataset split into training and held-out (test) cases."""

    train: list  # list[Case]
    test: list  # list[Case]
    root: Roots

    def describe(self) -> str:
        return f"{len(self.train)} training and {len(self.test)} held-out cases from {data_label(self.root)}"


def data_label(root: Roots) -> str:
    """The dataset folder(s) as one string, for tables and summaries."""
    return ", ".join(map(str, root)) if isinstance(root, tuple) else str(root)


CPU_PLAN = DataPlan(split="by_folder", preprocess=PreprocessConfig(spacing=(2.0, 2.0, 2.0)))
"""The ``cpu`` presets' data: a fixed split by ``--data`` folder (the first trains, e.g. the four
``brats2018`` cases; the others are held out), resampled to 2 mm (8x fewer voxels than 1 mm, so a
64^3 crop sees a quarter of the brain; predictions are resampled back to each scan's grid)."""


def ensure_data(data: str | Path | Sequence[str | Path] | None, out: Path, plan: DataPlan, *,
                progress: bool = True) -> Roots:
    """``data`` itself (one folder, or a tuple of several), or (when None) a synthetic dataset written
    to ``out/data`` once."""
    if data is not None:
        paths = tuple(Path(d) for d in ([data] if isinstance(data, (str, Path)) else data))
        for path in paths:
            if not path.exists():
                raise ConfigError(f"{path}: data folder not found")
        return paths[0] if len(paths) == 1 else paths
    if plan.split == "by_folder":
        raise ConfigError("this preset splits by --data folder (the first trains, the others are held out);"
                          " give at least two --data folders")
    from ..data.synth import synthesize_dataset

    folder = out / "data"
    if not (folder / "synth.json").is_file():
        synthesize_dataset(folder, plan.synth_cases, seed=plan.seed, spacing=plan.synth_spacing, progress=progress)
    return folder


def labeled_cases(root: str | Path, layout: str | None = None, label_scheme: str | None = None) -> list:
    """The usable labeled cases of one folder (a label, no problems, all four modalities)."""
    from ..data.reading.layouts import discover_cases

    return [c for c in discover_cases(root, layout, label_scheme)
            if c.label is not None and not c.problems and all(m in c.images for m in MODALITIES)]


def split_dataset(root: str | Path | Sequence[str | Path], plan: DataPlan, *, min_train: int = 1) -> Split:
    """Labeled cases of ``root`` (one folder, or several pooled) split into training and held-out cases.

    ``plan.split == "random"``: ``plan.n_test`` held-out cases drawn by a seeded permutation of
    the sorted case ids, so the same folders and seed always give the same split.
    ``"by_folder"``: the first folder's cases train, every other folder's cases are held out.
    """
    roots = (Path(root),) if isinstance(root, (str, Path)) else tuple(Path(r) for r in root)
    key = roots[0] if len(roots) == 1 else roots
    if plan.split not in SPLITS:
        raise ConfigError(f"unknown split {plan.split!r}; valid: {', '.join(SPLITS)}")
    groups = [labeled_cases(r, plan.layout, plan.label_scheme) for r in roots]
    if plan.split == "by_folder":
        test = [c for g in groups[1:] for c in g]
        if len(groups) < 2 or len(groups[0]) < min_train or not test:
            raise ConfigError(f"a by-folder split needs at least two --data folders, {min_train} labeled case(s)"
                              f" in the first and one in the others; got {data_label(key)}")
        return Split(groups[0], test, key)
    cases = sorted((c for g in groups for c in g), key=lambda c: c.case_id)
    n_test = plan.n_test
    if isinstance(n_test, float) and 0 < n_test < 1:
        n_test = min(max(1, round(n_test * len(cases))), len(cases) - min_train)
    need = max(n_test, 1) + min_train
    if len(cases) < need:
        raise ConfigError(f"{data_label(key)}: {len(cases)} usable labeled case(s); this experiment needs at least"
                          f" {need} ({max(n_test, 1)} held out + {min_train} to train)")
    order = np.random.default_rng(plan.seed).permutation(len(cases))
    test_idx = set(order[: int(n_test)].tolist())
    return Split([c for i, c in enumerate(cases) if i not in test_idx],
                 [c for i, c in enumerate(cases) if i in test_idx], key)


def build_cache(cases: Sequence, folder: Path, plan: DataPlan, *, progress: bool = False) -> Path:
    """Preprocess ``cases`` into the cache ``folder`` (idempotent); raise if any case failed."""
    from ..data.preprocessing.preprocess import preprocess_dataset

    report = preprocess_dataset(list(cases), folder, plan.preprocess, workers=1, progress=progress)
    if getattr(report, "failed", None):
        first = next(iter(report.failed.items()))
        raise ConfigError(f"preprocessing failed for {len(report.failed)} case(s), e.g. {first[0]}: {first[1]}")
    return folder


def training_data(data: str | Path | Sequence[str | Path] | None, out: Path, plan: DataPlan, *,
                  progress: bool = False) -> tuple[Any, Split, Path]:
    """The experiment's data made or found (:func:`ensure_data`), split (:func:`split_dataset`) and its
    training cases cached in ``out/cache`` (:func:`build_cache`): ``(root(s), split, cache folder)``."""
    root = ensure_data(data, out, plan, progress=progress)
    split = split_dataset(root, plan)
    return root, split, build_cache(split.train, out / "cache", plan)
