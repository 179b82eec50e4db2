"""Cross-validated search for a CPU training recipe (issue 12, item 2): an exploration driver.

Protocol: the 16 labelled shared cases in four fixed folds of four (:data:`FOLDS`; A = the four
``brats2018`` cases, the target's training set). A run trains on ONE fold and is scored on the
other twelve cases, as the target does. Training goes through the package's
:func:`brats_seg.train` (no validation split: all four cases train, ``last.pt`` is used);
prediction runs the package's sliding window (+ test-time mirroring) on the cached preprocessed
grid and maps probabilities back to the 1 mm crop with :func:`brats_seg.data.preprocessing.preprocess.resample`,
as :class:`brats_seg.Predictor` does (``restore``); scores are the package's legacy BraTS metrics.

Budgets are in optimizer steps (wall time is noisy on a shared machine): ``calibrate`` measures
steps/s of each variant on one thread (and two), ``train --minutes M`` converts M minutes of one
core into steps with that rate. Everything is written under ``$RECIPE_RUNS`` (default
``/work/recipe_runs``), outside the repository::

    python benchmarks/recipe_cv.py prepare                    # caches at 1, 1.5, 2 mm + fold views
    python benchmarks/recipe_cv.py calibrate base p96 aug     # steps/s, 1 and 2 threads
    python benchmarks/recipe_cv.py train base A --minutes 12  # train on fold A
    python benchmarks/recipe_cv.py predict base A             # probabilities of the 12 other cases
    python benchmarks/recipe_cv.py table base,s1.5 --folds A,B

Run it pinned to one core: ``taskset -c 1 python benchmarks/recipe_cv.py ...`` (torch uses one
thread unless ``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("RECIPE_RUNS", "/work/recipe_runs"))
DATA = Path(os.environ.get("BRATS_SEG_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
SUBSETS = ("brats2018", "brats2021", "brats2023", "brats-gli")
STEPS_PER_EPOCH = 50

FOLDS: dict[str, tuple[str, ...]] = {
    "A": ("Brats18_2013_3_1", "Brats18_CBICA_AQN_1", "Brats18_TCIA01_201_1", "Brats18_TCIA13_623_1"),
    "B": ("BraTS2021_00002", "BraTS2021_00003", "BraTS2021_00005", "BraTS-GLI-00012-000"),
    "C": ("BraTS2021_00006", "BraTS2021_00008", "BraTS2021_00014", "BraTS-GLI-00000-000"),
    "D": ("BraTS2021_00019", "BraTS2021_00024", "BraTS2021_00031", "BraTS2021_00495"),
}
"""Fixed folds: A = brats2018 (the target's training set); the ten brats2021 cases in id order dealt
three per fold over B, C, D, with the brats2023 case in B and the brats-gli (MNI grid) case in C."""


@dataclass(frozen=True)
class Recipe:
    """One training configuration (a 4-level ``unet3d`` 16..128 unless ``features`` says otherwise)."""

    spacing: float = 2.0
    patch: tuple[int, int, int] = (64, 64, 64)
    batch: int = 2
    features: tuple[int, ...] = (16, 32, 64, 128)
    lr: float = 1e-2
    optimizer: str = "adamw"
    loss: str = "dice_bce"
    augment: str = "off"
    """``off``, ``nnunet`` (the package's AugmentConfig defaults) or ``light`` (mirror + intensity only)."""
    fg_fraction: float = 0.5
    pretrain: str | None = None
    """Name of a synthetic pretraining run (:data:`PRETRAIN`) whose ``last.pt`` initialises the network."""
    seed: int = 0
    window_overlap: float = 0.5


BASE = Recipe()
VARIANTS: dict[str, Recipe] = {
    "base": BASE,
    "s1": replace(BASE, spacing=1.0),
    "s1.5": replace(BASE, spacing=1.5),
    "p48": replace(BASE, patch=(48, 48, 48)),
    "p80": replace(BASE, patch=(80, 80, 80)),
    "aug": replace(BASE, augment="nnunet"),
    "auglight": replace(BASE, augment="light"),
    "fg0.33": replace(BASE, fg_fraction=0.33),
    "fg1": replace(BASE, fg_fraction=1.0),
    "dicece": replace(BASE, loss="dice_ce"),
    "synth": replace(BASE, pretrain="synth"),
    "seed1": replace(BASE, seed=1),
}

PRETRAIN = {"synth": {"cases": 24, "steps": 600}}
"""Synthetic pretraining sources: number of ``brats-seg synth`` cases (1 mm) and pretraining steps
(not counted in the training budget)."""


def recipe_of(name: str) -> Recipe:
    """A named variant, or ``base+key=value+...`` for ad-hoc combinations (e.g. ``base+augment=light``)."""
    head, *mods = name.split("+")
    recipe = VARIANTS[head]
    for mod in mods:
        key, value = mod.split("=")
        kind = type(getattr(recipe, key))
        if kind is tuple:
            parsed = tuple(int(v) for v in value.split("x"))
        elif kind is type(None):
            parsed = value
        else:
            parsed = kind(value)
        recipe = replace(recipe, **{key: parsed})
    return recipe


# --------------------------------------------------------------------------- data

def all_cases():
    from brats_seg.data.reading.layouts import discover_cases

    return [c for sub in SUBSETS for c in discover_cases(DATA / sub)]


def cache_dir(spacing: float) -> Path:
    return ROOT / "cache" / f"s{spacing:g}"


def preprocess_config(spacing: float):
    from brats_seg.config import PreprocessConfig

    return PreprocessConfig(spacing=None if spacing == 1.0 else (spacing,) * 3)


def fold_view(cache: Path, fold: str, ids=None) -> Path:
    """A cache folder holding only ``ids`` (default: the fold's cases): links to the full cache's files."""
    view = cache / "folds" / fold
    view.mkdir(parents=True, exist_ok=True)
    ids = list(ids or FOLDS[fold])
    for case_id in ids:
        for suffix in ("_image.npy", "_label.npy", ".json"):
            link = view / f"{case_id}{suffix}"
            if not link.exists():
                link.symlink_to(cache / f"{case_id}{suffix}")
    index = json.loads((cache / "dataset.json").read_text())
    index["cases"] = ids
    (view / "dataset.json").write_text(json.dumps(index, indent=1))
    return view


def prepare(spacings=(1.0, 1.5, 2.0)) -> None:
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset

    cases = all_cases()
    missing = set(c for f in FOLDS.values() for c in f) - {c.case_id for c in cases}
    if missing:
        sys.exit(f"{DATA}: cases of the folds not found: {sorted(missing)}")
    for spacing in spacings:
        report = preprocess_dataset(cases, cache_dir(spacing), preprocess_config(spacing), workers=1)
        print(report.summary())
        for fold in FOLDS:
            fold_view(cache_dir(spacing), fold)


# --------------------------------------------------------------------------- training

def epoch_steps(steps: int) -> int:
    """Steps per epoch: the largest divisor of ``steps`` up to :data:`STEPS_PER_EPOCH` (a checkpoint per epoch)."""
    return max(d for d in range(1, STEPS_PER_EPOCH + 1) if steps % d == 0)


def train_config(recipe: Recipe, data: Path, out: Path, steps: int, threads: int = 1, init_from: str | None = None):
    from brats_seg import TrainConfig
    from brats_seg.data.augmentation.augment_config import AugmentConfig

    augmentation = AugmentConfig(p_rotate=0.0, p_scale=0.0) if recipe.augment == "light" else AugmentConfig()
    return TrainConfig(
        data=str(data), out=str(out), model="unet3d", preset="base",
        model_kwargs={"features": list(recipe.features), "strides": [1] + [2] * (len(recipe.features) - 1)},
        epochs=steps // epoch_steps(steps), steps_per_epoch=epoch_steps(steps), patch=recipe.patch,
        batch_size=recipe.batch, loss=recipe.loss, optimizer=recipe.optimizer, lr=recipe.lr,
        augment=recipe.augment != "off", augmentation=augmentation, fg_fraction=recipe.fg_fraction,
        folds=1, seed=recipe.seed, workers=0, threads=threads, device="cpu", init_from=init_from,
        output_scheme="brats2021",  # folds mix label schemes (B: brats2021 + brats2023); scoring uses regions
        resume=(out / "checkpoints" / "last.pt").is_file())


def load_rates() -> dict:
    path = ROOT / "calibration.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def steps_for(name: str, minutes: float | None, steps: int | None) -> int:
    if steps:
        return steps
    rates = load_rates()
    if name not in rates:
        sys.exit(f"no calibrated rate for {name!r} in {ROOT / 'calibration.json'}; calibrate it or give --steps")
    n = minutes * 60 * rates[name]["1"]
    return max(STEPS_PER_EPOCH, int(round(n / STEPS_PER_EPOCH)) * STEPS_PER_EPOCH)


def run_dir(name: str, fold: str, steps: int | None = None) -> Path:
    """``runs/NAME/FOLD_STEPS``; without ``steps``, the one trained run of ``name`` on ``fold``."""
    if steps:
        return ROOT / "runs" / name / f"{fold}_{steps}"
    found = sorted((ROOT / "runs" / name).glob(f"{fold}_*/done.json"))
    if len(found) != 1:
        sys.exit(f"{name} on fold {fold}: {len(found)} trained runs; give --steps")
    return found[0].parent


def pretrained(recipe: Recipe) -> str | None:
    """``last.pt`` of the recipe's synthetic pretraining (synthesized, preprocessed and trained on demand)."""
    if recipe.pretrain is None:
        return None
    from brats_seg.data.preprocessing.preprocess import preprocess_dataset
    from brats_seg.data.synth import synthesize_dataset

    spec = PRETRAIN[recipe.pretrain]
    raw = ROOT / "synth" / "raw"
    if not (raw / "synth.json").is_file():
        synthesize_dataset(raw, spec["cases"], "brats2021", seed=1000, spacing=1.0, workers=1)
    cache = ROOT / "synth" / f"s{recipe.spacing:g}"
    preprocess_dataset(raw, cache, preprocess_config(recipe.spacing), workers=1)
    base = replace(recipe, pretrain=None)
    key = f"pre-{recipe.pretrain}-" + "-".join(f"{k}{v}" for k, v in asdict(base).items() if v != asdict(BASE)[k])
    out = ROOT / "pretrain" / key.rstrip("-")
    steps = spec["steps"]
    last = out / "checkpoints" / "last.pt"
    if not (out / "done").is_file():
        from brats_seg import train

        train(train_config(base, cache, out, steps))
        (out / "done").write_text(str(steps))
    return str(last)


def train_run(name: str, fold: str, steps: int, threads: int = 1) -> Path:
    from brats_seg import train

    recipe = recipe_of(name)
    out = run_dir(name, fold, steps)
    if (out / "done.json").is_file():
        print(f"{out}: already trained")
        return out
    init = pretrained(recipe)
    data = fold_view(cache_dir(recipe.spacing), fold)
    t0 = time.perf_counter()
    summary = train(train_config(recipe, data, out, steps, threads, init))
    seconds = time.perf_counter() - t0
    (out / "done.json").write_text(json.dumps({"recipe": asdict(recipe), "fold": fold, "steps": steps,
                                               "threads": threads, "seconds": seconds,
                                               "final_loss": summary["history"][-1]["train_loss"]}, indent=1))
    print(f"{out}: {steps} steps in {seconds / 60:.1f} min ({steps / seconds:.3f} steps/s)")
    return out


# --------------------------------------------------------------------------- calibration

def calibrate(names: list[str], steps: int = 12, threads=(1, 2)) -> None:
    """Optimizer steps per second of each variant with 1 and 2 torch threads (data loading in-process).

    Records wall-clock rates (``"1"``, ``"2"``) and rates per CPU-second of the process (``"1_cpu"``,
    ``"2_cpu"``); on a shared machine the CPU-time rates are the stable ones. Two threads on an idle
    2-core machine run at most ``2 * rate["2_cpu"]`` steps/s (OpenMP spin-waits count as CPU time,
    so that bound is a little pessimistic)."""
    import torch

    from brats_seg.data.loaders import make_train_loader
    from brats_seg.training.loop import EpochSettings, train_one_epoch
    from brats_seg.training.losses import build_loss
    from brats_seg.training.trainer import build_network, build_optimizer

    rates = load_rates()
    for name in names:
        recipe = recipe_of(name)
        cfg = train_config(recipe, fold_view(cache_dir(recipe.spacing), "A"), ROOT / "tmp", steps)
        row = {}
        for n in threads:
            torch.set_num_threads(n)
            model = build_network(cfg, 4)
            opt = build_optimizer(cfg, model)
            loader = make_train_loader(cfg.data, list(FOLDS["A"]), cfg.patch, cfg.batch_size, num_workers=0,
                                       fg_fraction=cfg.fg_fraction, steps_per_epoch=steps,
                                       augment=cfg.augmentation if cfg.augment else False)
            settings = EpochSettings(torch.device("cpu"), total_steps=10**6, amp="auto", grad_clip=12.0)
            loader.sampler.set_epoch(0)
            train_one_epoch(model, [b for _, b in zip(range(2), loader)], build_loss(cfg.loss), opt, settings, step=0)
            loader.sampler.set_epoch(1)
            cpu = time.process_time()
            stats = train_one_epoch(model, loader, build_loss(cfg.loss), opt, settings, step=0)
            cpu = time.process_time() - cpu
            row[str(n)] = round(stats.steps / stats.seconds, 4)
            row[f"{n}_cpu"] = round(stats.steps / cpu, 4)  # steps per CPU-second: what contention does not change
        print(f"{name}: steps/s {row}", flush=True)
        rates[name] = {**rates.get(name, {}), **row, "when": time.strftime("%Y-%m-%d %H:%M")}
        (ROOT / "calibration.json").write_text(json.dumps(rates, indent=1))


# --------------------------------------------------------------------------- prediction

def predict_run(name: str, fold: str, steps: int | None = None, tta=(1,)) -> None:
    """Region probabilities (float16, preprocessed grid) of every case outside ``fold``, per TTA setting."""
    import torch

    from brats_seg.data.preprocessing.cache import load_cached
    from brats_seg.inference.activations import get_activation
    from brats_seg.inference.members import member_from_checkpoint
    from brats_seg.inference.sliding_window import sliding_window
    from brats_seg.inference.tta import mirrored

    recipe = recipe_of(name)
    out = run_dir(name, fold, steps)
    probs_dir = out / "probs"
    probs_dir.mkdir(exist_ok=True)
    member = member_from_checkpoint(out / "checkpoints" / "last.pt")
    net = member.network.to(memory_format=torch.channels_last_3d)
    activation = get_activation(member.activation)  # dice_ce checkpoints: softmax over labels
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else {}
    test = [c for f, ids in FOLDS.items() if f != fold for c in ids]
    for case_id in test:
        case = load_cached(cache_dir(recipe.spacing), case_id)
        x = torch.from_numpy(np.array(case.image, dtype=np.float32))[None]
        for n in tta:
            path = probs_dir / f"{case_id}_tta{n}.npy"
            if path.is_file():
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                p = sum(activation(y) for y in mirrored(
                    lambda t: sliding_window(t, net, recipe.patch, recipe.window_overlap, 4, channels_last=True),
                    x, n)) / max(n, 1)
            timing.setdefault(f"tta{n}", {})[case_id] = round(time.perf_counter() - t0, 3)
            timing.setdefault(f"tta{n}_cpu", {})[case_id] = round(time.process_time() - c0, 3)
            np.save(path, p[0].numpy().astype(np.float16))
        print(f"{case_id}: " + ", ".join(f"tta{n} {timing[f'tta{n}'][case_id]:.1f} s" for n in tta), flush=True)
    (out / "timing.json").write_text(json.dumps(timing, indent=1))


if __name__ == "__main__":
    from recipe_score import add_score_commands, run_score_command

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    p = sub.add_parser("calibrate")
    p.add_argument("names", nargs="+")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", default="1,2")
    for cmd in ("train", "predict", "run"):
        p = sub.add_parser(cmd)
        p.add_argument("name")
        p.add_argument("folds")
        p.add_argument("--minutes", type=float)
        p.add_argument("--steps", type=int)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--tta", default="1", help="mirror counts to predict with, e.g. 1,8")
    add_score_commands(sub)
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare()
    elif args.cmd == "calibrate":
        calibrate(args.names, args.steps, tuple(int(t) for t in args.threads.split(",")))
    elif args.cmd in ("train", "predict", "run"):
        import torch

        torch.set_num_threads(args.threads)
        for fold in args.folds.split(","):
            n = args.steps
            if args.cmd in ("train", "run"):
                n = steps_for(args.name, args.minutes, args.steps)
                train_run(args.name, fold, n, args.threads)
            if args.cmd in ("predict", "run"):
                predict_run(args.name, fold, n, tuple(int(t) for t in args.tta.split(",")))
    else:
        run_score_command(args)
