"""Pictures of evaluation results (matplotlib, Agg backend): box plots per region."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..conventions import GROUP_NAMES
from ..files import atomic_path

METRIC_LABELS = {"dice": "Dice", "hd95": "HD95 (mm)", "lesion_dice": "lesion-wise Dice",
                 "lesion_hd95": "lesion-wise HD95 (mm)", "sensitivity": "sensitivity", "specificity": "specificity"}
REGION_COLORS = {"WT": "#4daf4a", "TC": "#377eb8", "ET": "#e41a1c", "NETC": "#984ea3", "SNFH": "#ff7f00",
                 "RC": "#a65628", "CC": "#f781bf", "ED": "#999999", "GTV": "#377eb8"}


def boxplots(rows: Sequence[dict], path: str | Path, metrics: Sequence[str] = ("dice", "hd95"),
             title: str | None = None) -> Path:
    """One panel per metric, one box per group (WT, TC, ET, ...) with the cases as dots; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.get("status") in ("ok", "missing")]
    present = {r["region"] for r in scored}
    groups = [g for g in GROUP_NAMES if g in present] or ["WT", "TC", "ET"]
    n_cases = len({r["case_id"] for r in scored})
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.2, 1.1 * len(groups)) * len(metrics), 4.0), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes[0], metrics):
        data = [np.asarray([r[metric] for r in scored if r["region"] == reg and r.get(metric) is not None], float)
                for reg in groups]
        if any(d.size for d in data):
            box = ax.boxplot([d if d.size else np.array([np.nan]) for d in data], patch_artist=True,
                             widths=0.55, showfliers=False)
            for patch, reg in zip(box["boxes"], groups):
                patch.set_facecolor(REGION_COLORS[reg])
                patch.set_alpha(0.35)
            for i, d in enumerate(data, start=1):
                ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, s=10, color=REGION_COLORS[groups[i - 1]],
                           zorder=3)
        ticks = [f"{g}\n{GROUP_NAMES[g]}" if len(GROUP_NAMES[g]) < 20 else g for g in groups]
        ax.set_xticks(range(1, len(groups) + 1), ticks, fontsize=8)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        if "dice" in metric:
            ax.set_ylim(-0.02, 1.02)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or f"{n_cases} cases")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
