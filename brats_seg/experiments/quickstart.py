"""The quickstart: data -> training -> prediction of held-out cases -> evaluation -> report.

``brats-seg quickstart`` (and ``make demo``) runs the whole toolkit once on a
laptop. With no data it synthesizes a small dataset; with ``--data`` it uses any
dataset folder the toolkit reads. Cases are split into a training set (itself
split into train/validation by the trainer, for checkpoint selection) and a
held-out set that nothing in training sees; the held-out cases are predicted from
their raw files, exactly as ``brats-seg predict`` would, and scored.

The run folder holds::

    data/            synthetic cases (when no --data is given)
    cache/           preprocessed training cases
    run/             the training run (checkpoints, log.csv, curves.png)
    heldout.csv      the held-out cases (a manifest any command reads)
    predictions/     label maps of the held-out cases
    evaluation/      metrics.csv, summary.json/.md, boxplots.png
    overlays/        one picture per held-out case, prediction beside reference
    report.md, report.html
"""

from __future__ import annotations

import csv
import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PreprocessConfig, to_dict
from ..conventions import REGIONS
from ..data.cases import Case


@dataclass(frozen=True)
class QuickstartConfig:
    """Settings of one quickstart run; the defaults train on CPU in a few minutes.

    ``heldout``: fraction of cases kept out of training (at least one case, and
    at least two cases stay for training). ``model_kwargs``: build arguments of the
    model (``None``: :data:`QUICK_UNET` for the default ``unet3d``, none for others).
    """

    out: str = "quickstart"
    data: str | None = None
    synth_cases: int = 30
    synth_spacing: float = 3.0
    heldout: float = 0.2
    model: str = "unet3d"
    preset: str = "tiny"
    model_kwargs: dict | None = None
    patch: tuple[int, int, int] = (48, 48, 48)
    batch_size: int = 2
    epochs: int = 30
    steps_per_epoch: int = 30
    lr: float = 1e-2
    augment: bool = False
    fg_fraction: float = 0.5
    seed: int = 0
    device: str | None = None
    workers: int = 2


QUICK_UNET = {"features": [16, 32, 64, 128], "strides": [1, 2, 2, 2]}
"""The quickstart's U-Net: four levels of 16..128 filters (1.4 M parameters), fast on a CPU."""


def write_manifest(path: Path, cases: Sequence[Case]) -> Path:
    """A CSV manifest (case_id, label, label_scheme) that ``evaluate`` reads as a reference folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "label", "label_scheme"])
        for c in cases:
            w.writerow([c.case_id, str(Path(c.label).resolve()), c.label_scheme or ""])
    return path


def run_quickstart(cfg: QuickstartConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run every step; returns the summary also written to ``OUT/quickstart.json``."""
    from ..data.preprocess import preprocess_dataset
    from ..data.synth import synthesize_dataset
    from ..evaluation.report import evaluate_folder
    from ..inference.batch import OutputOptions, predict_cases
    from ..inference.predictor import Predictor
    from ..training.trainer import TrainConfig, train
    from .common import DataPlan, split_dataset

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    data = Path(cfg.data) if cfg.data else out / "data"
    if cfg.data is None:
        synthesize_dataset(data, cfg.synth_cases, "brats2021", seed=cfg.seed, spacing=cfg.synth_spacing,
                           workers=cfg.workers, progress=progress)
    split = split_dataset(data, DataPlan(n_test=float(cfg.heldout), seed=cfg.seed), min_train=2)
    train_cases, heldout = split.train, split.test
    manifest = write_manifest(out / "heldout.csv", heldout)
    timings["data"] = time.perf_counter() - t0

    t = time.perf_counter()
    preprocess_dataset(train_cases, out / "cache", PreprocessConfig(), workers=cfg.workers, progress=progress)
    timings["preprocess"] = time.perf_counter() - t

    t = time.perf_counter()
    model_kwargs = cfg.model_kwargs if cfg.model_kwargs is not None else QUICK_UNET if cfg.model == "unet3d" else {}
    tcfg = TrainConfig(data=str(out / "cache"), out=str(out / "run"), model=cfg.model, preset=cfg.preset,
                       model_kwargs=dict(model_kwargs), epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
                       patch=tuple(cfg.patch), batch_size=cfg.batch_size, lr=cfg.lr, augment=cfg.augment,
                       fg_fraction=cfg.fg_fraction, seed=cfg.seed, device=cfg.device,
                       folds=min(5, len(train_cases)), fold=0, val_every=max(1, cfg.epochs // 5),
                       workers=0, threads=None, progress=progress,
                       resume=(out / "run" / "checkpoints" / "last.pt").is_file())
    summary_train = train(tcfg)
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    ckpt = out / "run" / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        ckpt = out / "run" / "checkpoints" / "last.pt"
    predictor = Predictor([ckpt], device=cfg.device, overlap=0.5)
    batch = predict_cases(predictor, heldout, out / "predictions", OutputOptions(), progress=progress)
    timings["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    result = evaluate_folder(out / "predictions", manifest, out / "evaluation", progress=progress)
    timings["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    overlays = draw_overlays(heldout, out / "predictions", out / "overlays")
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    summary = {
        "data": str(data), "synthetic": cfg.data is None,
        "train_cases": [c.case_id for c in train_cases], "heldout_cases": [c.case_id for c in heldout],
        "checkpoint": str(ckpt), "train": {k: v for k, v in summary_train.items() if k != "history"},
        "prediction_failures": batch.failed, "seconds_per_case": batch.seconds,
        "metrics": result.summary["metrics"], "mean_dice": result.summary.get("mean_dice"),
        "timings_s": {k: round(v, 1) for k, v in timings.items()}, "config": to_dict(cfg),
        "device": str(predictor.device),
    }
    (out / "quickstart.json").write_text(json.dumps(summary, indent=2, default=str))
    write_report(out, summary, result.summary, overlays)
    return summary


def draw_overlays(cases: Sequence[Case], pred_dir: Path, out_dir: Path) -> list[Path]:
    """One PNG per case: FLAIR with the reference and the prediction in three planes."""
    from ..conventions import detect_scheme
    from ..data.cases import load_case
    from ..data.io import read_image
    from ..evaluation.overlays import overlay_figure

    paths = []
    for case in cases:
        pred_file = pred_dir / f"{case.case_id}.nii.gz"
        vol = load_case(case, channels=("t2f",))
        scheme = detect_scheme(np.unique(vol.label), hint=case.label_scheme, case_id=case.case_id)
        maps = {"reference": (vol.label, scheme)}
        if pred_file.is_file():
            maps["prediction"] = (np.asarray(read_image(pred_file, dtype=None).array).astype(np.uint8), scheme)
        path = out_dir / f"{case.case_id}.png"
        overlay_figure(vol.image[0], maps, path, title=f"{case.case_id} (FLAIR)")
        paths.append(path)
    return paths


def _fmt(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def metric_table(metrics: dict) -> list[dict[str, str]]:
    """One row per region (keys :data:`METRIC_HEADER`) of an evaluation summary."""
    rows = []
    for region in REGIONS:
        d, h = metrics[region]["dice"], metrics[region]["hd95"]
        cells = [region, f"{_fmt(d['mean'])} ± {_fmt(d['std'])}", _fmt(d["median"]), _fmt(h["median"], 1)]
        rows.append(dict(zip(METRIC_HEADER, cells)))
    return rows


def published_table(summary: dict) -> list[dict[str, str]]:
    """Our mean Dice beside the published results (which come from other data); keys :data:`PUBLISHED_HEADER`."""
    from ..evaluation.challenge import our_scores, reference_scores

    rows = []
    for r in our_scores(summary) + reference_scores():
        cells = [r["method"], f"{r['edition']} {r['data_split']}".strip(), r["metrics"]]
        cells += [_fmt(r[c]) for c in ("dice_wt", "dice_tc", "dice_et", "dice_mean")]
        rows.append(dict(zip(PUBLISHED_HEADER, cells)))
    return rows


METRIC_HEADER = ("region", "Dice mean ± std", "Dice median", "HD95 median (mm)")
PUBLISHED_HEADER = ("method", "data", "metrics", "Dice WT", "Dice TC", "Dice ET", "Dice mean")


def write_report(out: Path, summary: dict, evaluation: dict, overlays: Sequence[Path]) -> None:
    """``report.md`` and ``report.html``: what ran, the scores, curves, overlays and published results.

    ``summary``: the quickstart summary; ``evaluation``: the held-out evaluation summary."""
    from ..evaluation.challenge import DISCLAIMER, benchmark_table
    from .common import markdown_table

    kind = "synthetic" if summary["synthetic"] else "real"
    t = summary["timings_s"]
    intro = (f"Trained `{summary['config']['model']}` ({summary['config']['preset']}) on"
             f" {len(summary['train_cases'])} {kind} cases, predicted {len(summary['heldout_cases'])} held-out"
             f" cases on {summary['device']}. Total {t['total']:.0f} s (training {t['train']:.0f} s,"
             f" prediction {t['predict']:.0f} s).")
    metrics = metric_table(summary["metrics"])
    published = published_table(evaluation)
    rel = [p.relative_to(out).as_posix() for p in overlays]
    md = [f"# brats_seg quickstart report\n\n{intro}\n", "## Held-out scores\n",
          markdown_table(metrics, METRIC_HEADER), "\nPer case: `evaluation/metrics.csv`; box plots:\n",
          "![box plots](evaluation/boxplots.png)\n", "## Training curves\n", "![curves](run/curves.png)\n",
          "## Held-out cases (reference | prediction)\n", *[f"![{Path(r).stem}]({r})\n" for r in rel],
          "## Published challenge results (other data)\n", benchmark_table(evaluation)]
    (out / "report.md").write_text("\n".join(md) + "\n")

    def table(header, rows):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(r[h])}</td>" for h in header) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    images = "".join(f'<figure><img src="{html.escape(r)}" alt="{html.escape(Path(r).stem)}">'
                     f"<figcaption>{html.escape(Path(r).stem)}</figcaption></figure>" for r in rel)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>brats_seg quickstart</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}figure{{display:inline-block;margin:4px}}img{{max-width:100%}}</style>
</head><body><h1>brats_seg quickstart report</h1><p>{html.escape(intro)}</p>
<h2>Held-out scores</h2>{table(METRIC_HEADER, metrics)}<img src="evaluation/boxplots.png" alt="box plots">
<h2>Training curves</h2><img src="run/curves.png" alt="training curves">
<h2>Held-out cases (reference | prediction)</h2>{images}
<h2>Published challenge results (other data)</h2><p><b>{html.escape(DISCLAIMER)}</b></p>
{table(PUBLISHED_HEADER, published)}
</body></html>
"""
    (out / "report.html").write_text(page)
