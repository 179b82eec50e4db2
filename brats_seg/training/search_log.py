"""What a V-NAS search leaves to read: ``arch_log.csv`` and ``arch_weights.png`` (both written atomically).

``history``: one dict per epoch, ``{"epoch", "train_loss", "val_loss", "seconds", "weights"}`` with
``weights`` the softmax of the architecture parameters, ``(layers, n_ops)`` as nested lists; ``names``:
one name per layer (:func:`~brats_seg.models.nas.genotype.layer_names`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_bytes
from ..models.nas.genotype import OP_NAMES


def write_arch_log(path: Path, history: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    """One row per epoch: epoch, losses, seconds, then a ``{layer}_{op}`` softmax weight column per layer and op."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "phase", "train_loss", "val_loss", "seconds",
                     *(f"{name}_{op}" for name in names for op in OP_NAMES)])
    for row in history:
        writer.writerow([row["epoch"], row.get("phase", "search"), f"{row['train_loss']:.5f}",
                         f"{row['val_loss']:.5f}", f"{row['seconds']:.1f}",
                         *(f"{w:.5f}" for layer in row["weights"] for w in layer)])
    write_bytes(path, buf.getvalue().encode(), fsync=True)


def plot_arch_weights(path: Path, history: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    """One small panel per layer: the softmax weight of each op against epoch (warm-up epochs shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray([row["weights"] for row in history])  # (epochs, layers, ops)
    epochs = [row["epoch"] for row in history]
    warm = [row["epoch"] for row in history if row.get("phase") == "warmup"]
    n = weights.shape[1]
    cols = min(n, 6)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows), squeeze=False, sharey=True)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.axis("off")
            continue
        if warm:
            ax.axvspan(min(warm) - 0.5, max(warm) + 0.5, color="0.9", lw=0)
        for k, op in enumerate(OP_NAMES):
            ax.plot(epochs, weights[:, c, k], marker="o", ms=2, label=op)
        ax.set_title(names[c], fontsize=8)
        ax.set_ylim(0, 1)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    fig.supxlabel("epoch (grey: warm-up, weights only)", fontsize=8)
    fig.supylabel("softmax(alpha)", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes(path, buf.getvalue(), fsync=True)
