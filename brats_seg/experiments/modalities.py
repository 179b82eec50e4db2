"""Experiment ``modalities``: one network for any subset of the four sequences, and what it costs.

Two arms, the same network, budget, seed and training cases: ``dropout`` is trained with modality
dropout (:mod:`brats_seg.data.subsets`: each sample keeps, with probability ``dropout``, a random
subset of its channels, the rest set to 0 after normalization); ``zero-filled`` is trained on all
four sequences and run with the missing ones zero-filled (the baseline of the HeMIS, U-HVED and
RFNet tables; :class:`~brats_seg.inference.predictor.Predictor` with ``zero_fill=True``). Every
held-out case is predicted from each of the 15 non-empty subsets of its real files through the
predictor (the crop and normalization see only the sequences given), and scored per region.

Writes ``results.csv`` (one row per subset, then the 15-subset mean; Dice and HD95 per region of
both arms), ``results.md`` (the tables, the cost of robustness on complete input, published
15-subset means marked as other data), ``results.png`` (heat maps subsets x regions),
``per_case.csv`` and ``summary.json``.

The method is input-level channel dropout in one shared network, not RFNet's region-aware fusion
of modality-specific encoders; RFNet's published means are set beside ours as a reference on
other data (full BraTS 2018 training sets), not as a comparison.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_OVERLAP, PreprocessConfig
from ..conventions import MODALITIES, REGIONS
from ..data.subsets import all_subsets, subset_name
from .arms import Arm, Budget, train_arm
from .catalog import resolve_preset
from .datasets import DataPlan, Split, data_label, training_data
from .figures import figure, save_figure
from .heldout_scores import case_columns, meaned_groups, row_groups
from .runtime import Timer, progress_bar, torch_threads
from .tables import markdown_table, write_csv, write_results

ARMS = ("dropout", "zerofill")
ARM_TITLES = {"dropout": "modality dropout", "zerofill": "trained on all four, zero-filled"}
MEAN_ROW = "mean (15 subsets)"
PUBLISHED = (  # mean Dice (%) over the 15 subsets, BraTS 2018, mean of RFNet's three splits
    ("HeMIS", 78.60, 59.70, 48.10), ("U-HVED", 80.10, 64.00, 50.00), ("RobustSeg", 84.37, 69.78, 51.02),
    ("RFNet", 85.67, 76.53, 57.12))
PUBLISHED_SOURCE = ("github.com/dyh127/RFNet README (ICCV 2021), BraTS 2018 training data (285 cases), mean over"
                    " RFNet's three train/test splits; missing inputs zero-filled at test")


@dataclass(frozen=True)
class ModalitiesConfig:
    """``model``/``model_kwargs``: the network of both arms; ``dropout``: the dropout arm's probability
    (every subset allowed, drawn uniformly); ``seed``: both arms' (same initial weights and patches)."""

    model: str = "unet3d"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.5
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    data: DataPlan = field(default_factory=DataPlan)


PRESETS: dict[str, ModalitiesConfig] = {
    # CPU, seconds: 3 synthetic cases at 4 mm, 1 held out; numbers meaningless. Every sample dropped (as
    # RFNet samples its masks), so that its 6 samples surely differ from the other arm's
    "smoke": ModalitiesConfig(dropout=1.0, budget=Budget(preset="tiny", epochs=1, steps_per_epoch=3, patch=(32, 32, 32),
                                            threads=1, augment=False),
                              data=DataPlan(n_test=1, synth_cases=3)),
    # one busy CPU core, ~21 minutes per arm (3 s/step): a 4-level U-Net (16..128) at 2 mm on real cases (--data)
    "cpu": ModalitiesConfig(model_kwargs={"features": [16, 32, 64, 128], "strides": [1, 2, 2, 2]},
                            budget=Budget(preset="base", epochs=4, steps_per_epoch=100, patch=(48, 48, 48), lr=1e-2,
                                          threads=1, augment=False, overlap=0.25),
                            data=DataPlan(n_test=4, preprocess=PreprocessConfig(spacing=(2.0, 2.0, 2.0)))),
    # one GPU: nnU-Net-sized network at 1 mm, 20 held-out cases
    "full": ModalitiesConfig(model="nnunet", budget=Budget(preset="base", epochs=50, steps_per_epoch=250,
                                                           patch=(128, 128, 128), workers=4, overlap=DEFAULT_OVERLAP),
                             data=DataPlan(n_test=20, synth_cases=100, synth_spacing=1.0)),
}



def metrics_of(groups: Sequence[str] = REGIONS) -> tuple[str, ...]:
    """Per arm: ``dice_<group>`` ..., ``hd95_<group>`` ..., ``dice_mean`` (:func:`.heldout_scores.meaned_groups`)."""
    return tuple(f"{m}_{r}" for m in ("dice", "hd95") for r in groups) + ("dice_mean",)


def columns_of(groups: Sequence[str] = REGIONS) -> tuple[str, ...]:
    """``results.csv``'s columns for data scored on ``groups`` (:data:`COLUMNS` for WT, TC, ET)."""
    return ("subset", "n_sequences", *(f"{a}_{m}" for a in ARMS for m in metrics_of(groups)))


METRICS = metrics_of()
COLUMNS = columns_of()


# --------------------------------------------------------------------------- scoring


def score_subsets(arms: dict[str, Arm], cases, *, overlap: float, device: str | None, bar) -> list[dict[str, Any]]:
    """Predict every case from each of its 15 subsets with every arm; one row per (arm, subset, case)."""
    from ..data.reading.volumes import load_case
    from ..evaluation.metrics import evaluate_case
    from ..inference.predictor import Predictor

    predictors = {name: Predictor([str(arm.checkpoint)], device=device, overlap=overlap, tta=0, zero_fill=True,
                                  warn=False) for name, arm in arms.items()}
    rows = []
    for case in cases:
        vol = load_case(case, MODALITIES)
        for subset in all_subsets(MODALITIES):
            for name, predictor in predictors.items():
                t0 = time.perf_counter()
                pred = predictor.predict(vol, available=subset)
                seconds = time.perf_counter() - t0
                scheme = pred.info["label_scheme"]
                metrics = evaluate_case(pred.labels, vol.label, vol.reference.spacing, pred_scheme=scheme,
                                        ref_scheme=vol.label_scheme or scheme)
                row = {"arm": name, "subset": subset_name(subset), "case_id": case.case_id,
                       "trained": pred.info["sequences"]["members"][0]["trained"], "seconds": round(seconds, 3)}
                row.update({f"{m}_{r}": metrics[r][m] for r in metrics for m in ("dice", "hd95")})
                rows.append(row)
            bar.update(1)
    return rows


def subset_table(case_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per subset (means over cases, both arms side by side), then the mean over the 15 subsets."""
    table = []
    groups = row_groups(case_rows)
    for subset in all_subsets(MODALITIES):
        row: dict[str, Any] = {"subset": subset_name(subset), "n_sequences": len(subset)}
        for arm in ARMS:
            mine = [r for r in case_rows if r["arm"] == arm and r["subset"] == row["subset"]]
            for r in groups:
                for m in ("dice", "hd95"):
                    row[f"{arm}_{m}_{r}"] = float(np.mean([c[f"{m}_{r}"] for c in mine]))
            row[f"{arm}_dice_mean"] = float(np.mean([row[f"{arm}_dice_{r}"] for r in meaned_groups(groups)]))
        table.append(row)
    mean = {"subset": MEAN_ROW, "n_sequences": None}
    mean.update({c: float(np.mean([row[c] for row in table])) for c in columns_of(groups)[2:]})
    return [*table, mean]


def complete_input_cost(table: list[dict[str, Any]], groups: Sequence[str] = REGIONS) -> dict[str, float]:
    """Dropout arm minus the all-four arm on complete input (Dice, per group and mean; HD95 per group)."""
    full = next(r for r in table if r["subset"] == subset_name(MODALITIES))
    return {m: full[f"dropout_{m}"] - full[f"zerofill_{m}"] for m in metrics_of(groups)}


# --------------------------------------------------------------------------- outputs


def plot(table: list[dict[str, Any]], path: Path, groups: Sequence[str] = REGIONS) -> Path:
    """Heat maps of held-out Dice, subsets (rows) x groups (columns), one panel per arm."""
    fig, axes = figure(2, width=3.6, height=6.4)
    labels = [r["subset"] for r in table]
    for ax, arm in zip(axes, ARMS):
        values = np.array([[r[f"{arm}_dice_{g}"] for g in groups] for r in table])
        im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
        ax.set_xticks(range(len(groups)), groups)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.axhline(len(labels) - 1.5, color="w", lw=1.5)  # the mean row apart
        ax.set_title(ARM_TITLES[arm], fontsize=9)
    fig.colorbar(im, ax=axes[-1], shrink=0.6, label="held-out Dice")
    return save_figure(fig, path)


def _dice_columns(arm: str, groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{arm}_dice_{r}" for r in (*groups, "mean"))


def write_outputs(cfg: ModalitiesConfig, out: Path, preset: str, root: Path, split: Split, arms: dict[str, Arm],
                  table: list[dict[str, Any]], case_rows: list[dict[str, Any]], timer: Timer) -> dict[str, Any]:
    """``results.{csv,md,png}``, ``per_case.csv`` and ``summary.json``; returns the summary."""
    groups = row_groups(case_rows)  # WT, TC, ET (and RC ... where the data's scheme scores more)
    plot(table, out / "results.png", groups)
    write_csv(out / "per_case.csv", case_rows, ("arm", "subset", "case_id", "trained", "seconds",
                                                *case_columns(groups)))
    cost = complete_input_cost(table, groups)
    b = cfg.budget
    notes = [f"preset `{preset}`: {split.describe()}; every held-out case predicted from each of the 15 subsets of"
             " its own files",
             f"both arms: `{cfg.model}` {cfg.model_kwargs or ''} (size `{b.preset}`), {b.steps} steps of {b.batch_size}"
             f" x {'x'.join(map(str, b.patch))} crops, seed {cfg.seed}, spacing"
             f" {cfg.data.preprocess.spacing or 'as the scans'}",
             f"`dropout`: each sample keeps, with probability {cfg.dropout}, a subset drawn uniformly from the 15,"
             " the others 0 after z-scoring; `zerofill`: trained on all four, missing sequences 0 at test",
             f"Dice columns per arm: {', '.join(groups)}, mean; HD95 (mm) in the next table"]
    dice_cols = ("subset", *_dice_columns("dropout", groups), *_dice_columns("zerofill", groups))
    hd_cols = ("subset", *(f"{a}_hd95_{r}" for a in ARMS for r in groups))
    dice = ", ".join(f"{r} {cost['dice_' + r]:+.3f}" for r in groups)
    hd95 = ", ".join(f"{r} {cost['hd95_' + r]:+.1f} mm" for r in groups)
    cost_text = (f"On complete input the dropout model scores Dice {dice} (mean {cost['dice_mean']:+.3f}) against"
                 f" the network trained on all four only; HD95 {hd95}. With {len(split.test)} held-out case(s) a"
                 " difference of a few hundredths is within case-to-case noise.")
    published = markdown_table([{"method": n, "dice_WT": w, "dice_TC": t, "dice_ET": e} for n, w, t, e in PUBLISHED],
                               ("method", "dice_WT", "dice_TC", "dice_ET"))
    sections = {"HD95 (mm) per subset": markdown_table(table, hd_cols),
                "Cost of robustness on complete input": cost_text,
                "Published 15-subset means (other data)": f"{published}\n\nDice in %. Source: {PUBLISHED_SOURCE}."
                " Other data, other networks and far more training: a reference for the table's shape, not a"
                " comparison with ours."}
    summary = {"experiment": "modalities", "preset": preset, "data": data_label(root), "rows": table,
               "complete_input_cost": cost, "dropout": cfg.dropout, "model": cfg.model,
               "arms": {n: a.info for n, a in arms.items()}, "test_cases": [c.case_id for c in split.test],
               "train_cases": [c.case_id for c in split.train], "timings_s": {**timer.stages, "total": timer.total()}}
    title = "Missing sequences: the 15 subsets, modality dropout vs zero-filling"
    paths = write_results(out, table, columns_of(groups), title=title, notes=notes, sections=sections, summary=summary,
                          md_columns=dice_cols)
    return {**summary, "paths": {k: str(v) for k, v in paths.items()}}


# --------------------------------------------------------------------------- the experiment


def run(data: str | Path | None, out: str | Path, *, preset: str = "smoke", device: str | None = None,
        progress: bool = True, config: ModalitiesConfig | None = None) -> dict[str, Any]:
    """Train both arms, score the 15 subsets of every held-out case; write the results into ``out``."""
    cfg = config or resolve_preset(PRESETS, preset, "modalities")
    with torch_threads(cfg.budget.threads):
        return _run(cfg, data, Path(out), preset if config is None else "custom", device, progress)


def _run(cfg: ModalitiesConfig, data: str | Path | None, out: Path, preset: str, device: str | None,
         progress: bool) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    root, split, cache = training_data(data, out, cfg.data, progress=progress)
    timer.lap("data")
    bar = progress_bar(len(ARMS) + len(split.test) * 15, "modalities", progress)
    arms = {}
    for name in ARMS:
        options = {"modality_dropout": cfg.dropout} if name == "dropout" else {}
        arms[name] = train_arm(name, cache, out / "runs" / name, cfg.budget, model=cfg.model, seed=cfg.seed,
                               device=device, model_kwargs=cfg.model_kwargs, train_options=options, progress=progress)
        bar.update(1)
    timer.lap("train")
    case_rows = score_subsets(arms, split.test, overlap=cfg.budget.overlap, device=device, bar=bar)
    bar.close()
    timer.lap("score")
    return write_outputs(cfg, out, preset, root, split, arms, subset_table(case_rows), case_rows, timer)
