"""Helpers for the evaluation tests: the real label maps, a perturbation, and the official package's scores."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from brats_seg.conventions import convert_labels, get_scheme

REAL_LABELS = {
    "Brats18_2013_3_1": ("brats2018/Brats18_2013_3_1/Brats18_2013_3_1_seg.nii.gz", "brats2021"),
    "Brats18_CBICA_AQN_1": ("brats2018/Brats18_CBICA_AQN_1/Brats18_CBICA_AQN_1_seg.nii.gz", "brats2021"),
    "Brats18_TCIA01_201_1": ("brats2018/Brats18_TCIA01_201_1/Brats18_TCIA01_201_1_seg.nii.gz", "brats2021"),
    "Brats18_TCIA13_623_1": ("brats2018/Brats18_TCIA13_623_1/Brats18_TCIA13_623_1_seg.nii.gz", "brats2021"),
    "BraTS-GLI-00000-000": ("brats-gli/BraTS-GLI-00000-000/BraTS-GLI-00000-000-seg.nii.gz", "brats2023"),
}


def perturb(ref: np.ndarray, scheme: str) -> np.ndarray:
    """A plausible wrong prediction: shifted by (2, -1, 1) voxels, the tumor core grown by two voxels into edema."""
    core, edema = get_scheme(scheme).region_labels["TC"], get_scheme(scheme).region_labels["WT"]
    pred = np.roll(ref, (2, -1, 1), axis=(0, 1, 2)).astype(np.uint8)
    tc = (pred > 0) & (pred != edema)
    pred[ndimage.binary_dilation(tc, iterations=2) & (pred == edema)] = core
    return pred


def official_scores(evaluator, pred: np.ndarray, ref: np.ndarray, scheme: str) -> dict[str, tuple[float, float]]:
    """``{region: (global_bin_dsc, global_bin_hd95)}`` from ``evaluate_single_exam`` (labels converted to 2023)."""
    from brats_evaluation import evaluate_single_exam

    p3 = convert_labels(pred, scheme, "brats2023")
    r3 = convert_labels(ref, scheme, "brats2023")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_single_exam(p3, r3, "case", evaluator)
    assert "error" not in res, res
    return {r.upper(): (float(res[r]["global_bin_dsc"]), float(res[r]["global_bin_hd95"])) for r in ("wt", "tc", "et")}
