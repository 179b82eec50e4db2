"""Overlay pictures: a scan with its tumor regions in three planes.

WT, TC and ET are drawn as nested filled contours in fixed colours (edema-only
WT green, TC-not-ET yellow, ET red), so a prediction and its reference can be
compared side by side at the same slices. Schemes with more (or other) groups add
theirs (:func:`overlay_groups`): a resection cavity (RC, blue), a cyst (CC, cyan),
MEN-RT's one GTV (magenta).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..conventions import REGIONS, get_scheme, group_masks
from ..data.preprocessing.normalization import intensity_window
from ..files import atomic_path

REGION_COLORS: Mapping[str, tuple[float, float, float]] = {
    "WT": (0.15, 0.8, 0.2),
    "TC": (1.0, 0.85, 0.1),
    "ET": (0.9, 0.1, 0.1),
    "RC": (0.2, 0.45, 1.0),
    "CC": (0.1, 0.9, 0.9),
    "GTV": (0.9, 0.2, 0.9),
}
EXTRA_GROUPS = ("RC", "CC")
"""Groups outside WT/TC/ET drawn too where a nested scheme has them, last (on top)."""


def overlay_groups(scheme: str) -> tuple[str, ...]:
    """The groups drawn for a label map of ``scheme``, outermost first: WT, TC, ET (and RC or CC where the
    scheme has them); a scheme without the nested regions: its scored groups (MEN-RT: GTV)."""
    s = get_scheme(scheme)
    if not s.nested:
        return s.scored
    return (*REGIONS, *(g for g in EXTRA_GROUPS if g in s.groups))
PLANES = ("axial", "coronal", "sagittal")


def focus_point(volume_or_mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel index ``(i, j, k)`` to slice through: the centre of mass of the mask if
    it has any voxel, else the centre of the nonzero region, else the array centre."""
    arr = np.asarray(volume_or_mask)
    nz = np.argwhere(arr > 0)
    if len(nz) == 0:
        return tuple(s // 2 for s in arr.shape[:3])  # type: ignore[return-value]
    return tuple(int(round(c)) for c in nz.mean(axis=0))  # type: ignore[return-value]


def plane_slice(volume: np.ndarray, plane: str, point: tuple[int, int, int]) -> np.ndarray:
    """2-D slice ``(rows, cols)`` of a ``(H, W, D)`` volume in RAS-like voxel order,
    rotated so anterior/superior point up."""
    i, j, k = point
    if plane == "axial":
        sl = volume[:, :, k]
    elif plane == "coronal":
        sl = volume[:, j, :]
    elif plane == "sagittal":
        sl = volume[i, :, :]
    else:
        raise ValueError(f"unknown plane {plane!r}; valid: {', '.join(PLANES)}")
    return np.rot90(sl)


def region_rgba(labels_2d_regions: np.ndarray, alpha: float = 0.45, groups=REGIONS) -> np.ndarray:
    """``(G, r, c)`` bool masks of ``groups`` -> ``(r, c, 4)`` RGBA overlay, later groups on top."""
    rgba = np.zeros((*labels_2d_regions.shape[1:], 4), dtype=np.float32)
    for idx, region in enumerate(groups):  # WT first, ET last: inner regions overwrite
        mask = labels_2d_regions[idx]
        rgba[mask, :3] = REGION_COLORS[region]
        rgba[mask, 3] = alpha
    return rgba


def _masks(labels: np.ndarray, scheme: str, groups) -> np.ndarray:
    """``(G, H, W, D)`` bool masks of ``groups``, empty for a group ``scheme`` does not have."""
    s = get_scheme(scheme)
    have = [g for g in groups if g in s.groups]
    found = dict(zip(have, group_masks(labels, s, have))) if have else {}
    empty = np.zeros(np.shape(labels), bool)
    return np.stack([found.get(g, empty) for g in groups])


def overlay_figure(
    image: np.ndarray,
    label_maps: Mapping[str, tuple[np.ndarray, str]],
    out: str | Path | None = None,
    *,
    title: str = "",
    point: tuple[int, int, int] | None = None,
):
    """Draw ``image`` ``(H, W, D)`` with each label map in three planes.

    ``label_maps``: column title -> ``(labels (H, W, D), scheme name)``; with no
    label maps the scan alone is drawn. The slices go through ``point`` (default:
    the centre of the first map's tumor). Returns the matplotlib figure; saves a
    PNG when ``out`` is given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    drawn = list(dict.fromkeys(g for _, scheme in label_maps.values() for g in overlay_groups(scheme)))
    drawn = drawn or list(REGIONS)
    regions = {name: _masks(lab, scheme, drawn) for name, (lab, scheme) in label_maps.items()}
    if point is None and image.any():  # zoom to the brain: BraTS volumes are mostly background
        nz = np.argwhere(image != 0)
        box = tuple(slice(lo, hi + 1) for lo, hi in zip(nz.min(0), nz.max(0)))
        image = image[box]
        regions = {name: r[(slice(None), *box)] for name, r in regions.items()}
    if point is None:
        first = next(iter(regions.values()), None)
        point = focus_point(first[0] if first is not None and first[0].any() else image)
    columns = list(regions) or ["scan"]
    fig, axes = plt.subplots(len(PLANES), len(columns), figsize=(3.2 * len(columns), 9.0), squeeze=False)
    for row, plane in enumerate(PLANES):
        base = plane_slice(image, plane, point)
        vmin, vmax = intensity_window(base, (0.5, 99.5))
        for col, name in enumerate(columns):
            ax = axes[row][col]
            ax.imshow(base, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            if name in regions:
                reg2d = np.stack([plane_slice(r, plane, point) for r in regions[name]])
                ax.imshow(region_rgba(reg2d, groups=drawn), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=10)
            if col == 0:
                ax.set_ylabel(plane, fontsize=10)
    handles = [Patch(color=REGION_COLORS[r], label=r) for r in drawn]
    fig.legend(handles=handles, loc="lower center", ncol=len(drawn), frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    if out is not None:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=90)
        plt.close(fig)
    return fig
