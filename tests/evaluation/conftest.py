"""Fixtures for the evaluation tests: the official BraTS package and perturbed copies of the real cases."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from brats_official import REAL_LABELS, official_scores, perturb


@pytest.fixture(scope="session")
def official_evaluator():
    """brats-evaluation 0.0.10's evaluator with its bundled config ``gli`` (label 3 = ET)."""
    from brats_evaluation import config_path
    from panoptica import Panoptica_Evaluator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Panoptica_Evaluator.load_from_config(str(config_path("gli")))


@pytest.fixture(scope="session")
def perturbed_real(shared_data, tmp_path_factory, official_evaluator):
    """The five real label maps, a perturbed copy of each written as ``pred/<case_id>.nii.gz``, and the
    official package's scores of every pair. Returns ``(pred_dir, {case_id: (ref_path, scheme, official)})``."""
    pred_dir = tmp_path_factory.mktemp("perturbed") / "pred"
    pred_dir.mkdir()
    cases = {}
    for case_id, (rel, scheme) in REAL_LABELS.items():
        ref_path = Path(shared_data) / rel
        img = nib.load(str(ref_path))
        ref = np.rint(np.asarray(img.dataobj)).astype(np.uint8)
        pred = perturb(ref, scheme)
        nib.save(nib.Nifti1Image(pred, img.affine), str(pred_dir / f"{case_id}.nii.gz"))
        cases[case_id] = (ref_path, scheme, official_scores(official_evaluator, pred, ref, scheme))
    return pred_dir, cases
