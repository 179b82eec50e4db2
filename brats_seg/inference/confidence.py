"""How sure a prediction is: mirror/member disagreement and anatomical plausibility, per case.

Scores (each in [0, 1], None when it cannot be measured), of the predicted tumour (every nonzero
label) inside the brain's box:

``disagreement``  sum over voxels and outputs of the variance of the probabilities across
                  test-time mirrors and ensemble members, divided by the sum of their mean: the
                  share of the predicted volume the samples disagree on (0: all agree; 0.5: half
                  of the samples predict a region the others do not). None with one member and
                  no mirroring (``--tta`` 0 or 1): nothing to disagree.
``outside_brain`` share of tumour voxels outside the brain mask (the voxels where any sequence is
                  nonzero; for ``segment``, the prepared brain mask).
``flair_dark``    share of tumour voxels whose FLAIR is at or below the brain's median FLAIR
                  (gliomas are FLAIR-bright: edema and tumour); None without a FLAIR input.
``scattered``     share of tumour voxels outside the largest connected component (26-connected):
                  tumour in pieces, not in one mass (a truly multifocal glioma scores high too:
                  the flag asks for a look, it does not say the labels are wrong).

A case is *flagged* when any score is above its threshold (:data:`THRESHOLDS`). The thresholds
come from the expert labels of the 22 shared labelled cases (``benchmarks/calibrate_confidence.py``,
see docs/guides/new-site.md): expert labels reach at most outside_brain 0.000, flair_dark 0.063
(BraTS-SSA-00076-000), scattered 0.0026 (BraTS-GLI-00000-000); a model's outlines are rougher: the rule network of the
tests (WT Dice 0.95 on Brats18_TCIA01_201_1, predicted at 2 mm) puts 2.3 % of its tumour outside
the brain (resampling spills over the brain's edge), flair_dark 0.024, scattered 0.0. The
thresholds leave that margin: a tenth of the tumour outside the brain, 3x the experts' flair_dark,
a quarter of the tumour away from its main mass. The disagreement threshold is chosen by
leave-one-case-out cross-validation (:func:`cross_validated_threshold`, rule: the midpoint between
neighbouring scores that best separates predictions with whole-tumour Dice under 0.5 from the others,
Youden's J, ties to the highest) on a trained model's predictions of the 22 shared cases with 8
mirrorings: the experiments' ``cpu``-budget source model (tiny U-Net, 160 steps on 10 shared BraTS
cases) reaches 0.0009-0.0024 on its 20 right predictions and 0.0022 and 0.0065 on its 2 wrong ones
(WT Dice 0.32, 0.24); the rule chose 0.00205 on every case (0.002 kept), and held out case by case
it flagged 1 of the 2 wrong predictions and 1 of the 20 right ones. The scale is the model's: a
model whose mirrored outputs disagree more everywhere (the hard-thresholding rule network of the
tests: 0.040 on a case it segments with Dice 0.95) is flagged throughout; recalibrate for such a
model (``benchmarks/calibrate_confidence.py --model CKPT --tta 8``). An empty prediction is not
scored (nothing to judge) and not flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

THRESHOLDS: dict[str, float] = {"disagreement": 0.002, "outside_brain": 0.10, "flair_dark": 0.20, "scattered": 0.25}
"""Scores above these flag a case (calibration: module docstring and docs/guides/new-site.md)."""

EXIT_FLAGGED = 4
"""Exit status of ``predict``/``segment`` when every case was written but some were flagged
(0 all written and none flagged, 1 some case failed, 2 bad input keep their meanings)."""


def _share(mask: np.ndarray, of: np.ndarray, total: int) -> float:
    return round(float(np.count_nonzero(mask & of)) / total, 4)


def scattered_share(tumour: np.ndarray) -> float:
    """Share of ``tumour`` ``(h, w, d)`` bool outside its largest 26-connected component."""
    from scipy import ndimage

    components, n = ndimage.label(tumour, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return 0.0
    sizes = np.bincount(components.ravel())[1:]
    return round(1.0 - float(sizes.max()) / float(sizes.sum()), 4)


def plausibility(labels: np.ndarray, brain: np.ndarray, flair: np.ndarray | None) -> dict[str, float | None]:
    """``outside_brain``, ``flair_dark``, ``scattered`` of ``labels`` ``(h, w, d)`` (nonzero = tumour)
    given the ``brain`` mask and the raw ``flair`` (same grid, or None); all None for no tumour."""
    tumour = labels > 0
    total = int(np.count_nonzero(tumour))
    if total == 0:
        return {"outside_brain": None, "flair_dark": None, "scattered": None}
    dark = None
    if flair is not None and brain.any():
        dark = _share(flair <= np.median(flair[brain]), tumour, total)
    return {"outside_brain": _share(~brain, tumour, total), "flair_dark": dark, "scattered": scattered_share(tumour)}


def disagreement(mean: np.ndarray, variance: np.ndarray | None) -> float | None:
    """Sum of ``variance`` over sum of ``mean`` (both ``(K, h, w, d)`` over samples); None without variance."""
    if variance is None:
        return None
    total = float(mean.sum())
    return round(float(variance.sum()) / total, 4) if total > 0 else 0.0


def verdict(scores: Mapping[str, float | None], thresholds: Mapping[str, float] | None = None) -> dict[str, Any]:
    """``{"scores", "thresholds", "flagged", "reasons"}``: a case is flagged when a measured score
    exceeds its threshold; ``reasons`` name each such score (``"scattered 0.61 > 0.10"``)."""
    thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
    reasons = [f"{k} {v:.2g} > {thresholds[k]:.2g}" for k, v in scores.items()
               if v is not None and k in thresholds and v > thresholds[k]]
    return {"scores": dict(scores), "thresholds": thresholds, "flagged": bool(reasons), "reasons": reasons}


def assess(labels: np.ndarray, brain: np.ndarray, image: np.ndarray, channels: Sequence[str],
           mean: np.ndarray, variance: np.ndarray | None) -> dict[str, Any]:
    """The :func:`verdict` of one case: ``labels`` ``(h, w, d)``, ``brain`` mask and raw ``image``
    ``(C, h, w, d)`` with channel names ``channels`` on the same grid; ``mean``/``variance``
    ``(K, h', w', d')`` the probabilities' mean and variance across samples (any grid)."""
    flair = image[list(channels).index("t2f")] if "t2f" in channels else None
    scores = {"disagreement": disagreement(mean, variance), **plausibility(labels, brain, flair)}
    return verdict(scores)


def youden_threshold(scores: Sequence[float], wrong: Sequence[bool]) -> float | None:
    """The threshold that best separates ``wrong`` cases by ``score > threshold``: a midpoint between
    neighbouring distinct scores (or just above the largest) maximising Youden's J (flagged share of the
    wrong cases minus flagged share of the right ones); ties: the highest (fewer false alarms). None
    when every case is of one kind (nothing to separate)."""
    if all(wrong) or not any(wrong):
        return None
    values = sorted(set(float(s) for s in scores))
    cuts = [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    n_wrong, n_right = sum(map(bool, wrong)), len(wrong) - sum(map(bool, wrong))

    def j(t: float) -> float:
        flagged = [s > t for s in scores]
        return (sum(f and w for f, w in zip(flagged, wrong)) / n_wrong
                - sum(f and not w for f, w in zip(flagged, wrong)) / n_right)

    best = max(j(t) for t in cuts)
    return max(t for t in cuts if j(t) == best)


def cross_validated_threshold(scores: Sequence[float], wrong: Sequence[bool]) -> dict[str, Any]:
    """Leave-one-case-out check of :func:`youden_threshold`: each case is flagged (or not) by the
    threshold chosen on the other cases. Returns ``threshold`` (chosen on every case: the value to
    use), ``folds`` (each held-out case's threshold and whether it was flagged), ``sensitivity`` and
    ``specificity`` of the held-out flags (None without wrong / right cases)."""
    folds, hits = [], {"tp": 0, "fn": 0, "tn": 0, "fp": 0}
    for k, (s, w) in enumerate(zip(scores, wrong)):
        t = youden_threshold([*scores[:k], *scores[k + 1:]], [*wrong[:k], *wrong[k + 1:]])
        flagged = t is not None and s > t
        hits[("tp" if flagged else "fn") if w else ("fp" if flagged else "tn")] += 1
        folds.append({"threshold": t, "flagged": flagged, "wrong": bool(w)})
    n_wrong, n_right = hits["tp"] + hits["fn"], hits["tn"] + hits["fp"]
    return {"threshold": youden_threshold(scores, wrong), "folds": folds, "counts": hits,
            "sensitivity": hits["tp"] / n_wrong if n_wrong else None,
            "specificity": hits["tn"] / n_right if n_right else None}


def one_line(case_id: str, record: Mapping[str, Any]) -> str:
    """What the command says instead of "QC PASSED" for a flagged case."""
    return (f"case {case_id}: prediction FLAGGED as unsure ({'; '.join(record['reasons'])});"
            " check it before use")
