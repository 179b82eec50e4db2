"""Shared parts of the comparison experiments (``brats-seg experiment NAME``).

Every experiment follows the same steps, kept here so that the arms of a comparison
differ only in what is being compared:

1. :func:`split_dataset`: a deterministic held-out split of the labeled cases;
2. :func:`build_cache`: the training cases preprocessed once per training set;
3. :func:`train_arm`: one :func:`brats_seg.training.trainer.train` run under a shared :class:`Budget`;
4. :func:`score_checkpoints`: the held-out cases predicted with
   :class:`~brats_seg.inference.predictor.Predictor` (one checkpoint or an EMMA-style
   ensemble) and scored with :func:`~brats_seg.evaluation.metrics.evaluate_case`;
5. :func:`write_results`: ``results.csv`` + ``results.md`` (and a ``results.png`` drawn by
   the experiment), each written atomically.

Experiments are looked up by name in :data:`EXPERIMENTS`; each module defines
``PRESETS`` (``smoke``: seconds on a CPU inside the test suite; ``full``: a GPU and
real data) and ``run(data, out, preset=..., ...) -> dict``.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PreprocessConfig
from ..conventions import MODALITIES, REGIONS
from ..errors import ConfigError
from ..files import atomic_path

EXPERIMENTS: dict[str, str] = {
    "architectures": "brats_seg.experiments.architectures",
    "transfer": "brats_seg.experiments.transfer",
    "ensembles": "brats_seg.experiments.ensembles",
}
"""Experiment name -> module defining ``PRESETS`` and ``run``."""

METRIC_COLUMNS: tuple[str, ...] = (*(f"dice_{r}" for r in REGIONS), "dice_mean", *(f"hd95_{r}" for r in REGIONS))
"""Per-region held-out scores every results table carries (means over the held-out cases)."""

SMOKE_NOTE = ("**smoke preset**: a handful of optimizer steps on tiny synthetic volumes; it shows that every arm runs"
              " end to end, and its numbers say nothing about which arm is better (batch-norm networks such as"
              " resnet_unet even score 0 here: their running statistics have barely moved). Use `--preset full`.")


@dataclass(frozen=True)
class Budget:
    """The training budget every arm of one experiment gets (identical, so arms are comparable).

    ``preset``: model size (``tiny``/``base``); ``epochs`` x ``steps_per_epoch`` optimizer steps
    on ``patch``-sized crops, ``batch_size`` each. ``overlap``: sliding-window overlap when
    predicting the held-out cases. ``threads``: torch CPU threads (None: torch's default; 1 on a
    small shared CPU avoids oversubscription, ~5x faster on 2 busy cores). ``augment``: MONAI
    augmentation of the crops (off in the smoke presets, where a handful of steps learns little anyway).
    """

    preset: str = "tiny"
    epochs: int = 1
    steps_per_epoch: int = 4
    patch: tuple[int, int, int] = (32, 32, 32)
    batch_size: int = 2
    lr: float = 1e-3
    workers: int = 0
    overlap: float = 0.25
    threads: int | None = None
    augment: bool = True

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


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


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- training


@dataclass
class Arm:
    """One trained model: where its checkpoint is and what it cost."""

    name: str
    checkpoint: Path
    train_seconds: float
    parameters: int
    info: dict[str, Any] = field(default_factory=dict)


def train_arm(name: str, cache: Path, run: Path, budget: Budget, *, model: str, seed: int = 0,
              init_from: str | Path | None = None, freeze_encoder_epochs: int = 0, device: str | None = None,
              progress: bool = False, model_kwargs: Mapping[str, Any] | None = None) -> Arm:
    """Train ``model`` on every case of ``cache`` under ``budget`` (no validation split: the held-out
    cases are scored afterwards). Reuses a finished run found in ``run`` (same folder, same arm)."""
    from ..models.registry import build_model, count_parameters
    from ..training.trainer import TrainConfig, train

    best = run / "checkpoints" / "best.pt"
    done = run / "arm.json"
    if best.is_file() and done.is_file():
        info = json.loads(done.read_text())
        return Arm(name, best, float(info["train_seconds"]), int(info["parameters"]), info)
    cfg = TrainConfig(data=str(cache), out=str(run), model=model, preset=budget.preset,
                      model_kwargs=dict(model_kwargs or {}), epochs=budget.epochs,
                      steps_per_epoch=budget.steps_per_epoch, patch=tuple(budget.patch), batch_size=budget.batch_size,
                      lr=budget.lr, augment=budget.augment, folds=1, seed=seed, device=device, workers=budget.workers,
                      init_from=str(init_from) if init_from else None, freeze_encoder_epochs=freeze_encoder_epochs,
                      resume=(run / "checkpoints" / "last.pt").is_file(), progress=progress, threads=budget.threads)
    t0 = time.perf_counter()
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):  # e.g. the init-from report
        summary = train(cfg)
    seconds = time.perf_counter() - t0
    params = count_parameters(build_model(model, preset=budget.preset, **dict(model_kwargs or {})))  # no DS heads
    history = summary.get("history") or [{}]
    info = {"name": name, "model": model, "seed": seed, "train_seconds": round(seconds, 3), "parameters": params,
            "final_train_loss": history[-1].get("train_loss"), "init_from": str(init_from) if init_from else None,
            "freeze_encoder_epochs": freeze_encoder_epochs}
    with atomic_path(done) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    return Arm(name, best, seconds, params, info)


# --------------------------------------------------------------------------- scoring


@dataclass
class CaseScore:
    """Held-out scores of one case: ``metrics[region][metric]``; ``labels``/``reference`` kept on request."""

    case_id: str
    metrics: dict[str, dict[str, float]]
    seconds: float
    labels: np.ndarray | None = None
    reference: np.ndarray | None = None
    brain: np.ndarray | None = None
    scheme: str = "brats2021"
    ref_scheme: str = "brats2021"


def score_checkpoints(checkpoints: Sequence[str | Path], cases: Sequence, *, overlap: float = 0.25,
                      device: str | None = None, keep_labels: bool = False,
                      weights: Sequence[float] | None = None) -> list[CaseScore]:
    """Predict every case with the checkpoints (one member, or an EMMA-style probability average over
    several: :class:`~brats_seg.inference.predictor.Predictor`) and score it per region."""
    from ..data.cases import load_case
    from ..evaluation.metrics import evaluate_case
    from ..inference.predictor import Predictor

    predictor = Predictor([str(c) for c in checkpoints], device=device, overlap=overlap, tta=0, weights=weights)
    scores = []
    for case in cases:
        vol = load_case(case)
        t0 = time.perf_counter()
        pred = predictor.predict(vol)
        seconds = time.perf_counter() - t0
        scheme = pred.info["label_scheme"]
        ref_scheme = vol.label_scheme or scheme
        metrics = evaluate_case(pred.labels, vol.label, vol.reference.spacing, pred_scheme=scheme,
                                ref_scheme=ref_scheme)
        kept = (pred.labels, vol.label, vol.image.any(axis=0)) if keep_labels else (None, None, None)
        scores.append(CaseScore(vol.case_id, metrics, seconds, *kept, scheme, ref_scheme))
    return scores


def mean_metrics(scores: Sequence[CaseScore]) -> dict[str, float]:
    """Means over cases: ``dice_WT`` .. ``hd95_ET``, ``dice_mean`` (of the three regions) and ``seconds_per_case``."""
    out: dict[str, float] = {}
    for r in REGIONS:
        for m in ("dice", "hd95"):
            vals = [s.metrics[r][m] for s in scores if r in s.metrics and s.metrics[r].get(m) is not None]
            out[f"{m}_{r}"] = float(np.mean(vals)) if vals else float("nan")
    out["dice_mean"] = float(np.mean([out[f"dice_{r}"] for r in REGIONS]))
    out["seconds_per_case"] = float(np.mean([s.seconds for s in scores])) if scores else float("nan")
    return out


def per_case_rows(arm: str, scores: Iterable[CaseScore], **extra: Any) -> list[dict[str, Any]]:
    """One row per (arm, case) with every region's Dice and HD95, for ``per_case.csv``."""
    rows = []
    for s in scores:
        row: dict[str, Any] = {"arm": arm, **extra, "case_id": s.case_id, "seconds": round(s.seconds, 3)}
        for r in REGIONS:
            row[f"dice_{r}"] = s.metrics[r]["dice"]
            row[f"hd95_{r}"] = s.metrics[r]["hd95"]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- tables and plots


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Rows as CSV (atomic); missing values are empty cells."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c), 6) if isinstance(row.get(c), float) else row.get(c, "")
                         for c in columns})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c), 3) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str,
                  notes: Sequence[str] = (), sections: Mapping[str, str] | None = None,
                  summary: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``results.csv`` (every column), ``results.md`` (title, notes, the table, extra sections, a link to
    ``results.png``) and ``summary.json``; all atomic. Returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(out / "results.csv", rows, columns)}
    md = [f"# {title}", ""]
    if summary is not None and summary.get("preset") == "smoke":
        md += [SMOKE_NOTE, ""]
    md += [f"- {n}" for n in notes]
    md += ["", markdown_table(rows, columns), ""]
    for head, body in (sections or {}).items():
        md += [f"## {head}", "", body, ""]
    if (out / "results.png").is_file():
        md += ["![results](results.png)", ""]
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(md))
    paths["md"] = out / "results.md"
    if summary is not None:
        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=1, default=_json_default))
        paths["summary"] = out / "summary.json"
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.8):
    """A matplotlib figure with ``ncols`` axes on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig, path: Path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def region_bars(ax, labels: Sequence[str], rows: Sequence[Mapping[str, Any]], metric: str = "dice",
                ylabel: str = "held-out Dice") -> None:
    """Grouped bars: one group per row (``labels``), one bar per region (WT, TC, ET)."""
    colors = {"WT": "#2ca02c", "TC": "#ff7f0e", "ET": "#d62728"}
    x = np.arange(len(rows))
    width = 0.8 / len(REGIONS)
    for k, r in enumerate(REGIONS):
        vals = [float(row.get(f"{metric}_{r}", float("nan"))) for row in rows]
        ax.bar(x + (k - 1) * width, vals, width, label=r, color=colors[r])
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if metric == "dice":
        ax.set_ylim(0, 1)
    ax.legend(fontsize=8)


# --------------------------------------------------------------------------- presets and dispatch


def resolve_preset(presets: Mapping[str, Any], preset: str, experiment: str) -> Any:
    if preset not in presets:
        raise ConfigError(f"experiment {experiment!r} has no preset {preset!r}; choose one of {', '.join(presets)}")
    return presets[preset]


def experiment_module(name: str):
    """The module of experiment ``name`` (``PRESETS``, ``run``); unknown names raise :class:`ConfigError`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])


def run_experiment(name: str, data: str | Path | None, out: str | Path, preset: str = "smoke", *,
                   device: str | None = None, progress: bool = True, **options: Any) -> dict[str, Any]:
    """Run experiment ``name`` on ``data`` (None: synthesize the preset's dataset) into ``out``."""
    return experiment_module(name).run(data, out, preset=preset, device=device, progress=progress, **options)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use ``n`` torch CPU threads inside the block (None: leave as is), restoring the old count after."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Timer:
    """Wall-clock stages of an experiment, for its summary."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.stages: dict[str, float] = {}
        self._last = self.t0

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + now - self._last, 3)
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 3)


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="arm", disable=not enabled, dynamic_ncols=True)
