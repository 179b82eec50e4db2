"""Issue 20 figures: the cost of masking unknown groups out of the loss, and what masking buys on mixed data.

``cost``: seconds per loss step (forward + backward of :class:`~brats_seg.training.losses.DiceBCELoss` on
``(B, G, P, P, P)`` logits) unmasked vs masked (one sample of the batch does not label the last group, as a
brats2021 case beside brats2024-gli ones), one thread, median of ``--repeats``; and seconds per training step
of a tiny model on real cavity cases with and without brats2021 cases in the batch stream.

``mixed``: three real cavity cases (``tests/cavity_cases.py``: shared brats2021 cases with a fluid sphere
labelled 4, brats2024-gli) plus three plain brats2021 cases, trained as WT TC ET RC (``--output-scheme
brats2024-gli``) twice: masked (the default: RC unknown for the brats2021 cases) and unmasked (RC read as
background there, as a WT/TC/ET-era loader would); Dice per group on a held-out cavity case.

``cavity``: the three cavity cases alone (as ``tests/training/test_cavity_real.py``), Dice per group on the
held-out one.

Usage::

    python benchmarks/bench_outputs.py cost [--patch 128] [--repeats 5]
    python benchmarks/bench_outputs.py cavity [--data ../shared/data] [--steps 100]
    python benchmarks/bench_outputs.py mixed [--data ../shared/data] [--steps 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cavity_cases import cavity_dataset  # noqa: E402

from brats_seg.cli import main  # noqa: E402
from brats_seg.data.preprocessing.preprocess import preprocess_dataset  # noqa: E402
from brats_seg.data.reading.layouts.discovery import discover_cases  # noqa: E402
from brats_seg.outputs import Outputs  # noqa: E402
from brats_seg.training.losses import build_loss  # noqa: E402

CAVITY = ["BraTS2021_00002", "BraTS2021_00003", "BraTS2021_00005"]
PLAIN = ["BraTS2021_00008", "BraTS2021_00014", "BraTS2021_00019"]
HELD_OUT = ["BraTS2021_00006"]


def loss_cost(patch: int, repeats: int, batch: int = 2, groups: int = 4) -> dict[str, float]:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, groups, patch, patch, patch, generator=gen)
    target = (torch.rand(batch, groups, patch, patch, patch, generator=gen) > 0.7).float()
    known = torch.ones(batch, groups, dtype=torch.bool)
    known[-1, -1] = False
    loss = build_loss("dice_bce")
    out = {}
    for name, k in (("unmasked", None), ("masked", known)):
        times = []
        for _ in range(repeats):
            x = logits.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss(x, target, k).backward()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


@contextlib.contextmanager
def unmasked():
    """Every group known for every case: a group a case's scheme lacks is read as background."""
    original = Outputs.masks

    def masks(self, labels, scheme):
        m, known = original(self, labels, scheme)
        return m, np.ones_like(known)

    Outputs.masks = masks
    try:
        yield
    finally:
        Outputs.masks = original


def train_and_score(data: Path, test: Path, run: Path, steps: int) -> dict[str, float]:
    args = ["train", str(data), "--out", str(run), "--model", "unet3d", "--preset", "tiny", "--model-arg",
            "features=[16,32,64]", "--patch", "32", "--epochs", str(steps // 10), "--steps-per-epoch", "10",
            "--folds", "1", "--workers", "0", "--threads", "1", "--lr", "3e-3", "--fg-fraction", "1",
            "--no-augment", "--no-progress", "--output-scheme", "brats2024-gli"]
    t0 = time.perf_counter()
    assert main(args) in (0, 1)
    seconds = time.perf_counter() - t0
    pred = run.parent / f"{run.name}-pred"
    assert main(["predict", str(test), "--model", str(run / "checkpoints" / "last.pt"), "--out", str(pred),
                 "--no-progress"]) == 0
    ev = run.parent / f"{run.name}-ev"
    with contextlib.redirect_stdout(sys.stderr):
        assert main(["evaluate", str(pred), str(test), "--out", str(ev), "--no-plots", "--workers", "1"]) == 0
    summary = json.loads((ev / "summary.json").read_text())
    return {**{g: round(s["dice"]["mean"], 4) for g, s in summary["metrics"].items()},
            "train_seconds": round(seconds, 1)}


def mixed(shared: Path, steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cavity_dataset(shared, tmp / "cavity", CAVITY)
        cavity_dataset(shared, tmp / "test", HELD_OUT, first=9)
        plain = [c for c in discover_cases(shared / "brats2021") if c.case_id in PLAIN]
        preprocess_dataset(discover_cases(tmp / "cavity") + plain, tmp / "cache", workers=1, progress=False)
        rows = {"masked": train_and_score(tmp / "cache", tmp / "test", tmp / "masked", steps)}
        with unmasked():
            rows["unmasked"] = train_and_score(tmp / "cache", tmp / "test", tmp / "unmasked", steps)
    print(json.dumps(rows, indent=1))


def cavity(shared: Path, steps: int) -> None:
    """Dice per group on the held-out cavity case of a model trained on the three cavity cases only."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cavity_dataset(shared, tmp / "train", CAVITY)
        cavity_dataset(shared, tmp / "test", HELD_OUT, first=9)
        print(json.dumps(train_and_score(tmp / "train", tmp / "test", tmp / "run", steps), indent=1))


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--patch", type=int, default=128)
    c.add_argument("--repeats", type=int, default=5)
    m = sub.add_parser("mixed")
    m.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    m.add_argument("--steps", type=int, default=100)
    v = sub.add_parser("cavity")
    v.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    v.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    if args.what == "cost":
        print(json.dumps({"patch": args.patch, **{k: round(v, 4) for k, v in loss_cost(args.patch,
                                                                                      args.repeats).items()}}))
    elif args.what == "cavity":
        cavity(args.data, args.steps)
    else:
        mixed(args.data, args.steps)


if __name__ == "__main__":
    main_cli()
