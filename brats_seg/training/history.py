"""The run's per-epoch history: ``log.csv`` (one row per epoch) and ``curves.png``.

Both are rewritten atomically from the history stored in the checkpoint, so a
run killed and resumed has no gap and no duplicate epoch in its log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from ..files import write_bytes

COLUMNS = ("epoch", "train_loss", "lr", "val_dice_WT", "val_dice_TC", "val_dice_ET", "val_dice_mean",
           "seconds", "data_wait", "steps", "elapsed")
"""``seconds``: the epoch's training time; ``steps``: its optimizer steps (fewer in the epoch that
ends a time budget); ``elapsed``: training time of the run so far, over resumed sessions."""


def validation_groups(history: Sequence[dict]) -> list[str]:
    """The groups validated (``val_dice_<group>`` keys, mean aside) in order; WT, TC, ET when none was."""
    found = dict.fromkeys(k[9:] for r in history for k in r if k.startswith("val_dice_") and k != "val_dice_mean")
    return list(found) or ["WT", "TC", "ET"]


def write_log(path: str | Path, history: Sequence[dict]) -> None:
    """Write ``history`` (dicts keyed by :data:`COLUMNS`, the validation columns those of the model's output
    groups: WT, TC, ET by default; missing values empty) as CSV."""
    columns = (*COLUMNS[:3], *(f"val_dice_{g}" for g in validation_groups(history)), *COLUMNS[6:])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    write_bytes(path, buf.getvalue().encode(), fsync=True)


def read_log(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_curves(path: str | Path, history: Sequence[dict]) -> None:
    """Training loss and validation Dice per region against epoch, as a PNG (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [r["epoch"] for r in history]
    ax1.plot(epochs, [r["train_loss"] for r in history], color="k")
    ax1.set(xlabel="epoch", ylabel="training loss", title="loss")
    colors = {"WT": "tab:green", "TC": "tab:orange", "ET": "tab:red"}
    others = iter(("tab:blue", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"))
    for region in validation_groups(history):
        color = colors.get(region) or next(others, "tab:gray")
        pts = [(r["epoch"], r[f"val_dice_{region}"]) for r in history if r.get(f"val_dice_{region}") is not None]
        if pts:
            ax2.plot(*zip(*pts), marker="o", ms=3, color=color, label=region)
    ax2.set(xlabel="epoch", ylabel="Dice", title="validation Dice", ylim=(0, 1))
    if ax2.lines:
        ax2.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes(path, buf.getvalue(), fsync=True)
