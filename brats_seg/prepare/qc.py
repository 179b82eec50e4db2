"""Quality control: one picture per case, and the similarity threshold.

The picture (``qc.png``) has one row per check, three planes each (axial, coronal,
sagittal through the brain's centre, or the tumour's): every registered sequence in the
atlas with the T1c's edges drawn over it; the T1c in the atlas with the template's
edges (the atlas registration); the brain mask's outline on the T1c; and, after
segmentation, the labels on the native T1c. Each row's title gives the similarity and
PASS/FAIL against :data:`MIN_SIMILARITY`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.preprocessing.normalization import intensity_window
from ..files import atomic_path

MIN_SIMILARITY = {"rigid": 0.35, "affine": 0.08}
"""Sharpness of the similarity peak (:func:`~.registration.peak_sharpness`) below which a
registration fails QC, per kind (co-registration to the T1c; affine to the atlas).

NMI itself cannot be the test: a right co-registration of 5.5 mm clinical slices
(TCGA-FG-6692, T2 onto T1c: NMI 1.06) scores lower than 1 mm data 5 mm off the solution
(1.06-1.07). The sharpness separates them (``benchmarks/bench_prepare.py --calibrate``, on
TCGA-FG-6692 and simulated copies of three shared BraTS cases):

* co-registration: right solutions score 0.44-0.72; moved 3 mm + 3 degrees off 0.26-0.43,
  5 + 5 off -0.04-0.32, 10 + 10 off at most 0.19: 0.35 fails what is 5 mm off or worse
  (some 3 mm errors pass);
* atlas (one brain onto an average template: a broad peak): right solutions 0.15-0.22,
  3 + 3 off 0.11-0.17, 5 + 5 off 0.02-0.11, 10 + 10 off at most 0.00. A few millimetres off
  the atlas do no harm (results go back through the same transform), so only gross
  failures fail."""

MIN_NMI = 1.02
"""A registration with NMI below this (unrelated images: 1.0) fails whatever its sharpness."""

LABEL_COLOURS = {1: (0.9, 0.2, 0.2), 2: (0.2, 0.8, 0.2), 3: (1.0, 0.85, 0.1), 4: (1.0, 0.85, 0.1)}


@dataclass
class Row:
    """One row of the picture: ``image`` ``(X, Y, Z)`` with ``spacing``; drawn over it: the edges
    of ``edges_of`` (same grid), the outline of ``mask``, and/or a label map ``labels``."""

    title: str
    image: np.ndarray
    spacing: Sequence[float]
    edges_of: np.ndarray | None = None
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    failed: bool = False

    def lines(self, point: Sequence[int]) -> list[np.ndarray | None]:
        """Per plane: edges and outline pixels to draw (None: nothing)."""
        out: list[np.ndarray | None] = [None] * 3
        if self.edges_of is not None:
            out = [edges(p) for p in _planes(self.edges_of, point)]
        if self.mask is not None:
            out = [o if o is not None else np.zeros(p.shape, bool) for o, p in zip(out, _planes(self.mask, point))]
            out = [o | outline(p) for o, p in zip(out, _planes(self.mask, point))]
        return out


def edges(image: np.ndarray, share: float = 0.12) -> np.ndarray:
    """The strongest ``share`` of the nonzero gradient magnitudes of a 2-D slice: an edge map."""
    from scipy import ndimage as ndi

    grad = ndi.gaussian_gradient_magnitude(image.astype(np.float32), 1.0)
    inside = grad[grad > 0]
    if inside.size == 0:
        return np.zeros(image.shape, bool)
    return grad > np.quantile(inside, 1 - share)


def outline(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a (2-D) mask (the mask minus its erosion)."""
    from scipy import ndimage as ndi

    return mask & ~ndi.binary_erosion(mask)


def centre_of(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel at the centre of mass of ``mask`` (the volume centre if it is empty)."""
    if not mask.any():
        return tuple(s // 2 for s in mask.shape)
    return tuple(int(round(c)) for c in np.argwhere(mask).mean(0))


def focus_of(mask: np.ndarray) -> tuple[int, int, int]:
    """A voxel that shows ``mask`` in all three planes: the slice (last axis) holding most of it,
    and the centre of mass of the mask within that slice."""
    if not mask.any():
        return tuple(s // 2 for s in mask.shape)
    z = int(np.argmax(mask.sum(axis=(0, 1))))
    x, y = (int(round(c)) for c in np.argwhere(mask[:, :, z]).mean(0))
    return x, y, z


def _planes(volume: np.ndarray, point: Sequence[int]) -> list[np.ndarray]:
    x, y, z = point
    return [volume[:, :, z], volume[:, y, :], volume[x, :, :]]


def _aspects(spacing: Sequence[float]) -> list[float]:
    sx, sy, sz = spacing
    return [sy / sx, sz / sx, sz / sy]


def _overlay(slice_lines: np.ndarray | None, slice_labels: np.ndarray | None) -> np.ndarray:
    rgba = np.zeros((*(slice_lines if slice_lines is not None else slice_labels).shape, 4), np.float32)
    if slice_labels is not None:
        for value, colour in LABEL_COLOURS.items():
            rgba[slice_labels == value] = (*colour, 0.45)
    if slice_lines is not None:
        rgba[slice_lines] = (1.0, 0.9, 0.0, 0.9)
    return rgba


def qc_picture(path: str | Path, rows: Sequence[Row], title: str, points: Sequence[Sequence[int]]) -> Path:
    """Write the QC picture: ``rows`` x 3 planes through ``points`` (one voxel per row)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for ax_row, row, point in zip(axes, rows, points):
        lo, hi = intensity_window(row.image, (1, 99), positive_only=True, min_width=1e-6)
        line_planes = row.lines(point)
        label_planes = _planes(row.labels, point) if row.labels is not None else [None] * 3
        for ax, img, lines, labels, aspect in zip(ax_row, _planes(row.image, point), line_planes, label_planes,
                                                  _aspects(row.spacing)):
            ax.imshow(img.T, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=aspect, interpolation="nearest")
            if lines is not None or labels is not None:
                ax.imshow(np.transpose(_overlay(lines, labels), (1, 0, 2)), origin="lower", aspect=aspect,
                          interpolation="nearest")
            ax.set_axis_off()
        ax_row[0].set_title(row.title, loc="left", fontsize=9, color="red" if row.failed else "black")
    fig.suptitle("\n".join(textwrap.wrap(title, 100)), fontsize=10)  # a flagged verdict is long: wrapped
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return Path(path)


def prepare_rows(prepared) -> list[Row]:
    """Rows for a :class:`~.pipeline.PreparedCase`: each sequence over the T1c's edges, the T1c
    over the template's edges, the brain mask's outline."""
    import SimpleITK as sitk

    from .atlas import atlas_grid, template
    from .spatial_transforms import array_of, resample

    regs = prepared.record["registrations"]
    t1c, mask = prepared.images["t1c"], prepared.mask

    def title(name: str, key: str) -> str:
        r = regs[key]
        return f"{name}   NMI {r['nmi']:.3f}, sharpness {r['sharpness']:.2f}  {'PASS' if r['passed'] else 'FAIL'}"

    rows = [Row(title(f"{m} over T1c edges", m), prepared.images[m], (1, 1, 1), edges_of=t1c,
                failed=not regs[m]["passed"]) for m in ("t1n", "t2w", "t2f") if m in prepared.images]
    tpl = array_of(resample(template(), atlas_grid(), sitk.Transform()))
    rows.append(Row(title("T1c over template edges", "atlas"), t1c, (1, 1, 1), edges_of=tpl,
                    failed=not regs["atlas"]["passed"]))
    rows.append(Row(f"brain mask ({prepared.record['brain_extraction']['method']})", t1c, (1, 1, 1), mask=mask))
    return rows


def write_qc(path: str | Path, rows: Sequence[Row], prepared, points: Sequence[Sequence[int]] | None = None,
             verdict: str | None = None) -> Path:
    """The QC picture of a prepared case (rows through the brain's centre unless ``points``);
    ``verdict`` replaces "QC PASSED" in the title (a flagged prediction, :mod:`.segment`)."""
    qc = prepared.record["qc"]
    verdict = verdict or "QC PASSED" if qc["passed"] else f"QC FAILED ({', '.join(qc['failed'])})"
    centre = centre_of(prepared.mask)
    limits = ", ".join(f"{k} {v}" for k, v in qc["threshold"].items())
    return qc_picture(path, rows, f"{prepared.case_id}: {verdict}  (sharpness thresholds: {limits})",
                      points or [centre] * len(rows))
