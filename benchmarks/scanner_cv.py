"""Scanner-shaped augmentation, chosen by cross-validation on scanner-like copies of the shared cases.

Protocol (issue 22, item 3): the 14 labelled ``brats2018`` + ``brats2021`` cases, sorted by id, dealt
into ``--folds`` folds (fold k = every ``folds``-th case from the k-th). Per fold, two models are trained
on the other folds' cases with the experiments' ``cpu`` budget (:data:`brats_seg.experiments.arms.CPU_BUDGET`:
a tiny ``unet3d``, 160 steps of 2 x 64^3 crops on the 2 mm grid, one thread, seed 0), identical but for
the augmentation:

* ``off``: no augmentation (the ``cpu`` recipe's setting);
* ``scanner``: only the scanner-shaped options of :mod:`brats_seg.data.augmentation.scanner_augment`
  (:data:`SCANNER`: thick slices along one random axis and a smooth bias field; every other
  augmentation probability 0, so the comparison isolates them).

Each model is scored (Dice WT/TC/ET) on the first ``--copies`` held-out cases as scanner-like copies
made by :func:`brats_seg.prepare.simulate.simulate_case` (each sequence moved by a rigid motion, T2 and
FLAIR in 5-6 mm slices, T1c RAS-ordered, T1n a DICOM series) and run through ``prepare`` (brain
extraction, co-registration, atlas grid) as ``segment`` does, the labels mapped back to the copy's T1c
grid and compared with the truth; and on every held-out case as released (the clean control).
Writes ``OUT/scanner_cv.json`` (per case) and prints the per-region means::

    OMP_NUM_THREADS=1 python benchmarks/scanner_cv.py --out /work/results/h22/scanner_cv [--folds 2 --copies 3]

``--only-fold K`` runs one fold and merges it into ``scanner_cv.json`` (folds can run one after another
or side by side).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from brats_seg.data.augmentation.augment_config import AugmentConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SCANNER = AugmentConfig(p_rotate=0.0, p_scale=0.0, p_noise=0.0, p_blur=0.0, p_brightness=0.0, p_shift=0.0,
                        p_gamma=0.0, p_flip=0.0, p_thick_slices=0.3, thick_slice_factor=(2, 5), p_bias_field=0.3,
                        bias_field_coefficient=0.3)
"""The ``scanner`` arm's augmentation: the scanner-shaped options only (docs/guides/new-site.md, section 4)."""
ARMS = {"off": None, "scanner": SCANNER}
REGIONS = ("WT", "TC", "ET")


def cases() -> list:
    from brats_seg.experiments.datasets import labeled_cases

    return sorted((c for s in ("brats2018", "brats2021") for c in labeled_cases(DATA / s)), key=lambda c: c.case_id)


def train(arm: str, train_cases: list, out: Path, k: int):
    from brats_seg.experiments.arms import CPU_BUDGET, train_arm
    from brats_seg.experiments.datasets import CPU_PLAN, build_cache

    cache = build_cache(train_cases, out / "cache" / f"fold{k}", CPU_PLAN)
    aug = ARMS[arm]
    budget = dataclasses.replace(CPU_BUDGET, augment=aug is not None)
    return train_arm(f"{arm}-fold{k}", cache, out / "runs" / f"{arm}-fold{k}", budget, model="unet3d", seed=0,
                     train_options={"augmentation": aug} if aug is not None else None)


def copy_truth(case, truth: dict) -> np.ndarray:
    """The case's expert label on its scanner-like copy's T1c grid (same motion and voxel order)."""
    from brats_seg.data.reading.image_io import read_image
    from brats_seg.prepare.simulate import ras_ordered

    label = read_image(case.label)
    return ras_ordered(label.array, np.asarray(truth["sequences"]["t1c"]["motion"]) @ label.affine)[0]


def score_copy(case, predictors: dict, out: Path, seed: int) -> dict:
    """Simulate, prepare (once) and predict with each predictor; Dice per region on the copy's T1c grid."""
    from brats_seg.data.reading.volumes import load_case
    from brats_seg.evaluation.metrics import evaluate_case
    from brats_seg.prepare import scan_set
    from brats_seg.prepare.pipeline import prepare_case
    from brats_seg.prepare.segment import to_native, volumes
    from brats_seg.prepare.simulate import SimulationConfig, simulate_case

    folder = out / "copies" / case.case_id
    truth = simulate_case(case.images, folder / "scans", seed=seed,
                          config=SimulationConfig(thick_mm=(5.0, 6.0), patient_id=f"SIM-{seed:04d}"))
    files = {m: folder / "scans" / s["file"] for m, s in truth["sequences"].items()}
    prepared = prepare_case(scan_set(files, case.case_id), folder / "prepared", progress=False)
    if not prepared.passed:
        return {arm: None for arm in predictors}
    ref, ref_scheme = copy_truth(case, truth), load_case(case).label_scheme
    spacing = prepared.scans.series["t1c"].image.spacing
    found = {}
    for arm, predictor in predictors.items():
        pred = predictor.predict(volumes(prepared, ("t1n", "t1c", "t2w", "t2f")))
        native, _ = to_native(prepared, "t1c", pred.labels, pred.info["label_scheme"])
        metrics = evaluate_case(native, ref, spacing, pred_scheme=pred.info["label_scheme"], ref_scheme=ref_scheme,
                                groups=REGIONS)
        found[arm] = {g: round(float(metrics[g]["dice"]), 4) for g in REGIONS}
    return found


def run_fold(k: int, folds: int, n_copies: int, out: Path) -> list[dict]:
    from brats_seg.experiments.heldout_scores import score_checkpoints
    from brats_seg.inference.predictor import Predictor

    every = cases()
    held = every[k::folds]
    train_cases = [c for c in every if c not in held]
    rows, models, seconds = [], {}, {}
    for arm in ARMS:
        trained = train(arm, train_cases, out, k)
        models[arm], seconds[arm] = trained.checkpoint, trained.train_seconds
        for s in score_checkpoints([trained.checkpoint], held, overlap=0.25, device="cpu"):
            rows.append({"fold": k, "arm": arm, "input": "clean", "case": s.case_id,
                         **{g: round(float(s.metrics[g]["dice"]), 4) for g in REGIONS}})
    predictors = {arm: Predictor([str(p)], device="cpu", overlap=0.25) for arm, p in models.items()}
    for i, case in enumerate(held[:n_copies]):
        t0 = time.perf_counter()
        for arm, dice in score_copy(case, predictors, out, seed=100 * k + i).items():
            rows.append({"fold": k, "arm": arm, "input": "scanner-like copy", "case": case.case_id,
                         "seconds": round(time.perf_counter() - t0, 1), **(dice or {"failed": True})})
        print(f"fold {k}: copy of {case.case_id} scored", flush=True)
    for arm in ARMS:
        rows.append({"fold": k, "arm": arm, "input": "training", "train_seconds": round(seconds[arm], 1)})
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean Dice per (arm, input, region) and the paired difference scanner - off per input."""
    out: dict = {}
    for inp in ("scanner-like copy", "clean"):
        by = {arm: {r["case"] + str(r["fold"]): r for r in rows if r["arm"] == arm and r["input"] == inp
                    and "WT" in r} for arm in ARMS}
        common = sorted(set(by["off"]) & set(by["scanner"]))
        out[inp] = {"cases": len(common), **{arm: {g: round(float(np.mean([by[arm][c][g] for c in common])), 4)
                                                   for g in REGIONS} for arm in ARMS},
                    "scanner_minus_off": {g: round(float(np.mean([by["scanner"][c][g] - by["off"][c][g]
                                                                  for c in common])), 4) for g in REGIONS}}
    out["train_seconds"] = {arm: round(sum(r.get("train_seconds", 0.0) for r in rows if r["arm"] == arm), 1)
                            for arm in ARMS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--copies", type=int, default=3, help="scanner-like copies scored per fold")
    parser.add_argument("--only-fold", type=int, help="run this fold only; merge into OUT/scanner_cv.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(args.folds) if args.only_fold is None else [args.only_fold]:
        found = run_fold(k, args.folds, args.copies, out)
        saved = out / "scanner_cv.json"  # re-read: another fold may have been written meanwhile
        rows = [r for r in (json.loads(saved.read_text())["rows"] if saved.is_file() else []) if r["fold"] != k]
        rows += found
        saved.write_text(json.dumps({"rows": rows, "summary": summary(rows)}, indent=1))
    print(json.dumps(summary(rows), indent=1))


if __name__ == "__main__":
    main()
