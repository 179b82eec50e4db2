"""BraTS 2023+ lesion-wise Dice and HD95 (the challenge ranking metrics since 2023).

Per scored group (WT, TC, ET; the 2024+ schemes add NETC, SNFH, RC, CC, ED or GTV),
following the challenge's reference implementation (github.com/rachitsaluja/
BraTS-2023-Metrics, ``metrics.py``, formerly ``eval.py``; Kazerooni et al.,
arXiv:2305.17033, and the BraTS 2023 GLI/MEN/MET/PED/SSA papers):

1. Reference lesions are the 26-connected components of the reference mask,
   merged when their dilation (18-neighbour ball, ``dilation_iterations`` times)
   joins them: each merged lesion is the set of reference voxels of one connected
   component of the dilated reference.
2. Predicted lesions are the 26-connected components of the prediction. A
   predicted lesion matches every reference lesion whose dilation it touches.
3. Each reference lesion scores Dice and HD95 between itself and the union of its
   matched predicted lesions; a missed lesion scores Dice 0 and HD95 374. HD95 is
   the challenge's: DeepMind's ``compute_robust_hausdorff`` (surface elements
   weighted by area, the larger directed 95th percentile; ``hd95_mode="surfel"``,
   see :mod:`.distances`).
4. Reference lesions with volume at or below ``volume_threshold`` (mm³, which is
   voxels at BraTS's 1 mm grid) are dropped from the score (a prediction that
   touches them is still not a false positive).
5. Every predicted lesion that matches no reference lesion is a false positive:
   Dice 0, HD95 374.
6. Case score = mean over kept reference lesions and false positives. With
   neither (empty reference, empty prediction): Dice 1, HD95 0.

``hd95_mode="max"`` or ``"pooled"`` use voxel surfaces instead (up to about 2 mm
apart per lesion on real cases). ``brats-evaluation`` 0.0.10 (panoptica) applies
neither the dilation nor the threshold, so its ``sq_dsc`` differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..conventions import naming_of
from ..errors import BratsSegError
from .distances import bounding_box, check_pair, normalize_spacing
from .metrics import case_masks, dice, hd95

LESION_PENALTY_HD95: float = 374.0
"""HD95 (mm) of a missed or false-positive lesion in the BraTS 2023+ scoring."""

LESION_METRICS: tuple[str, ...] = ("lesion_dice", "lesion_hd95", "lesions_tp", "lesions_fn", "lesions_fp")
LESION_HD95_MODE = "surfel"
"""The challenge's per-lesion HD95 (DeepMind surfels); :data:`~.metrics.HD95_MODES` lists the others."""


@dataclass(frozen=True)
class LesionwiseParams:
    """Lesion-wise scoring parameters of one BraTS sub-challenge."""

    name: str
    dilation_iterations: int
    volume_threshold: float
    """Reference lesions with volume (mm³) at or below this are dropped."""
    description: str = ""
    penalty_hd95: float = LESION_PENALTY_HD95


CHALLENGES: Mapping[str, LesionwiseParams] = {
    p.name: p
    for p in (
        LesionwiseParams("gli", 3, 50.0, "BraTS 2023+ adult glioma"),
        LesionwiseParams("ssa", 3, 50.0, "BraTS 2023+ glioma in sub-Saharan Africa"),
        LesionwiseParams("ped", 3, 50.0, "BraTS 2023+ pediatric tumors"),
        LesionwiseParams("men", 1, 50.0, "BraTS 2023+ meningioma"),
        LesionwiseParams("met", 1, 2.0, "BraTS 2023+ brain metastases"),
    )
}


def get_challenge(name: str | LesionwiseParams) -> LesionwiseParams:
    """Look a sub-challenge up by name (``gli``, ``BraTS-GLI`` ...); an unknown name lists the valid ones."""
    if isinstance(name, LesionwiseParams):
        return name
    key = name.lower().removeprefix("brats-").removeprefix("brats")
    if key not in CHALLENGES:
        raise BratsSegError(f"unknown BraTS sub-challenge {name!r}; valid: {', '.join(CHALLENGES)}")
    return CHALLENGES[key]


NAMING_CHALLENGES: Mapping[str, str] = {"ssa": "ssa", "ped": "ped", "men": "men", "men-rt": "men", "met": "met"}
"""Case-id naming (:func:`brats_seg.conventions.naming_of`) -> sub-challenge; every other naming: gli."""


def challenge_for(case_id: str | None) -> str:
    """The sub-challenge whose parameters score a case, from its id (``BraTS-MET-00001-000`` -> met).

    GLI, GoAT, the 2017-2021 naming and ids of one's own get gli; MEN-RT gets MEN's
    parameters (the reference code names no MEN-RT).
    """
    return NAMING_CHALLENGES.get(naming_of(case_id) or "", "gli")


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components (3-D; full connectivity in any dimension)."""
    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def lesionwise_region(
    pred_mask, ref_mask, spacing=None, challenge: str | LesionwiseParams = "gli", *,
    hd95_mode: str = LESION_HD95_MODE,
) -> dict[str, float]:
    """Lesion-wise scores of one region's boolean masks ``(H, W, D)``: see :data:`LESION_METRICS`.

    ``lesions_tp`` / ``lesions_fn`` count kept reference lesions found / missed;
    ``lesions_fp`` counts unmatched predicted lesions.
    """
    params = get_challenge(challenge)
    pred, ref = np.asarray(pred_mask) != 0, np.asarray(ref_mask) != 0
    check_pair(pred, ref)
    spacing = normalize_spacing(spacing, pred.ndim)
    voxel_mm3 = float(np.prod(spacing))
    empty = {"lesion_dice": 1.0, "lesion_hd95": 0.0, "lesions_tp": 0, "lesions_fn": 0, "lesions_fp": 0}
    box = bounding_box(pred | ref, margin=1)
    if box is None:
        return empty
    pred, ref = pred[box], ref[box]
    pred_cc, n_pred = _components(pred)
    pred_boxes = ndimage.find_objects(pred_cc)

    n_lesions, pairs, ref_lesion, volumes = _match_lesions(ref, pred_cc, n_pred, params)
    volumes = volumes * voxel_mm3
    lesion_boxes = ndimage.find_objects(ref_lesion)

    dices, hds, tp, fn = [], [], 0, 0
    for k in range(1, n_lesions + 1):
        if volumes[k] <= params.volume_threshold:
            continue
        matched = pairs[1, pairs[0] == k]
        if matched.size == 0:
            fn += 1
            dices.append(0.0)
            hds.append(params.penalty_hd95)
            continue
        tp += 1
        # score on the box holding the lesion and its matched predicted lesions
        sub = _union_box([lesion_boxes[k - 1], *(pred_boxes[m - 1] for m in matched)])
        gt_k = ref_lesion[sub] == k
        pred_k = np.isin(pred_cc[sub], matched)
        dices.append(dice(pred_k, gt_k))
        hds.append(hd95(pred_k, gt_k, spacing, mode=hd95_mode))
    n_fp = n_pred - np.unique(pairs[1]).size
    dices += [0.0] * n_fp
    hds += [params.penalty_hd95] * n_fp
    if not dices:
        return empty
    return {"lesion_dice": float(np.mean(dices)), "lesion_hd95": float(np.mean(hds)),
            "lesions_tp": tp, "lesions_fn": fn, "lesions_fp": int(n_fp)}


def _match_lesions(ref: np.ndarray, pred_cc: np.ndarray, n_pred: int, params: LesionwiseParams):
    """Reference lesions and the predicted components that touch their dilation.

    Returns ``(n_lesions, pairs (2, K) of (lesion, predicted component), ref_lesion (H, W, D) int32 lesion ids
    on the reference voxels, voxel count per lesion id (n_lesions + 1,))``. The lesions live in the
    reference's box grown by the dilation (the dilated set lies inside it).
    """
    ref_lesion = np.zeros(ref.shape, np.int32)
    ref_box = bounding_box(ref, margin=params.dilation_iterations + 1)
    if ref_box is None:
        return 0, np.zeros((2, 0), np.int64), ref_lesion, np.zeros(1)
    ball = ndimage.generate_binary_structure(ref.ndim, 2)
    dilated = ndimage.binary_dilation(ref[ref_box], structure=ball, iterations=params.dilation_iterations)
    lesion_cc, n_lesions = _components(dilated)  # lesion k = ref & (lesion_cc == k); its dilation: lesion_cc == k
    pred_sub = pred_cc[ref_box]
    both = (lesion_cc > 0) & (pred_sub > 0)
    keys = np.unique(lesion_cc[both].astype(np.int64) * (n_pred + 1) + pred_sub[both])
    pairs = np.stack([keys // (n_pred + 1), keys % (n_pred + 1)])
    ref_lesion[ref_box] = np.where(ref[ref_box], lesion_cc, 0)
    volumes = np.bincount(ref_lesion[ref_box].ravel(), minlength=n_lesions + 1)
    return n_lesions, pairs, ref_lesion, volumes


def _union_box(boxes) -> tuple[slice, ...]:
    return tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(len(boxes[0])))


def lesionwise_case(
    pred_labels, ref_labels, spacing=None, pred_scheme=None, ref_scheme=None, *,
    challenge: str | LesionwiseParams = "gli", hd95_mode: str = LESION_HD95_MODE, groups: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Lesion-wise scores of a label map pair ``(H, W, D)`` -> ``{group: {metric: value}}``.

    Label schemes and ``groups`` as in :func:`brats_seg.evaluation.metrics.evaluate_case`.
    """
    spacing = normalize_spacing(spacing, np.ndim(pred_labels))
    names, pred, ref, _ = case_masks(pred_labels, ref_labels, pred_scheme, ref_scheme, groups)
    return {g: lesionwise_region(p, r, spacing, challenge, hd95_mode=hd95_mode) for g, p, r in zip(names, pred, ref)}
