"""Figures of the experiments (matplotlib, Agg backend), saved atomically as PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import REGIONS
from ..files import atomic_path

REGION_COLORS = {"WT": "#2ca02c", "TC": "#ff7f0e", "ET": "#d62728"}


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
    x = np.arange(len(rows))
    width = 0.8 / len(REGIONS)
    for k, r in enumerate(REGIONS):
        vals = [float(row.get(f"{metric}_{r}", float("nan"))) for row in rows]
        ax.bar(x + (k - 1) * width, vals, width, label=r, color=REGION_COLORS[r])
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if metric == "dice":
        ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
