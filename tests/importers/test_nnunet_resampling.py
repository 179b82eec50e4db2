"""nnU-Net's resampling for cases off the plans' spacing: our functions equal nnunetv2's, and a real case at
1 x 1 x 4 mm (its separate-z rule) and at 1.5 x 1.5 x 1.5 mm is segmented as nnUNetPredictor segments it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from nnunet_folder import BRATS_SEQUENCES, PLAIN, write_trained_folder
from test_nnunet_exact import dice, float32_nnunet, nnunet_labels  # noqa: F401 (float32_nnunet: a fixture)

from brats_seg.conventions import get_scheme
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.importers.nnunet_resampling import new_shape, resample_to_shape, separate_z_axis
from brats_seg.inference.predictor import Predictor

RESAMPLINGS = [  # (spacing, new spacing, order, order_z, force_separate_z)
    ((1.0, 1.0, 4.0), (1.0, 1.0, 1.0), 3, 0, None),  # anisotropic input: z apart, nearest
    ((1.0, 1.0, 1.0), (4.0, 1.0, 1.0), 1, 0, None),  # logits back to an anisotropic case (first axis)
    ((1.5, 1.5, 1.5), (1.0, 1.0, 1.0), 3, 0, None),  # isotropic: one cubic 3-D resize
    ((1.0, 1.0, 2.0), (1.0, 1.0, 1.0), 3, 1, True),  # forced apart, linear in z
    ((1.0, 2.0, 2.0), (1.0, 1.0, 1.0), 3, 0, None),  # two coarse axes: never apart
]


@pytest.mark.parametrize("spacing, target, order, order_z, force", RESAMPLINGS)
def test_resampling_equals_nnunet(spacing, target, order, order_z, force):
    from nnunetv2.preprocessing.resampling.default_resampling import (
        compute_new_shape,
        determine_do_sep_z_and_axis,
        resample_data_or_seg_to_shape,
    )

    rng = np.random.default_rng(0)
    data = (rng.standard_normal((2, 9, 11, 7)) * 50).astype(np.float32)
    shape = new_shape(data.shape[1:], spacing, target)
    assert shape == tuple(compute_new_shape(data.shape[1:], spacing, target))
    apart, axis = determine_do_sep_z_and_axis(force, spacing, target)
    assert separate_z_axis(spacing, target, force) == (axis if apart else None)
    theirs = resample_data_or_seg_to_shape(data, shape, spacing, target, False, order, order_z, force)
    ours = resample_to_shape(data, shape, spacing, target, order, order_z, force)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def write_resampled(shared, case_id, box, step, zoom, out):
    """A BraTS 2021-layout crop of ``case_id``, every ``step``-th slice along our last axis (``zoom`` > 1: the
    grid coarsened by that factor per axis, linear); returns (folder, files in nnU-Net's channel order)."""
    from scipy import ndimage

    folder = out / case_id
    folder.mkdir(parents=True)
    files = []
    for suffix in BRATS_SEQUENCES:
        img = nib.load(shared / "brats2021" / case_id / f"{case_id}_{suffix}.nii.gz")
        crop = img.slicer[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]:step]
        data, affine = np.asarray(crop.dataobj, dtype=np.float32), crop.affine.copy()
        if zoom != 1:
            data = ndimage.zoom(data, 1 / zoom, order=1, grid_mode=True, mode="nearest")
            affine[:3, :3] *= zoom
        path = folder / f"{case_id}_{suffix}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), path)
        files.append(path)
    return folder, files


GRIDS = [  # (case, box, slice step, zoom): BraTS 1 mm made anisotropic (separate z) or coarser
    ("BraTS2021_00002", ((100, 156), (20, 68), (20, 100)), 4, 1.0),
    ("BraTS2021_00003", ((110, 166), (90, 138), (115, 155)), 1, 1.5),
]


@pytest.mark.realdata
@pytest.mark.parametrize("case_id, box, step, zoom", GRIDS, ids=["1x1x4mm-separate-z", "1.5mm"])
def test_resampled_case_equals_nnunet(tmp_path, shared_data, float32_nnunet, case_id, box, step, zoom):  # noqa: F811
    folder = write_trained_folder(tmp_path, network=PLAIN, regions=True, folds=(0,))
    case_dir, files = write_resampled(shared_data, case_id, box, step, zoom, tmp_path / "case")
    (case,) = discover_cases(case_dir)
    prediction = Predictor([folder], device="cpu", batch_size=2).predict(load_case(case), label_scheme="msd")
    assert prediction.info["grids"][0]["resampled"]
    ours = prediction.labels
    with torch.inference_mode(False):
        theirs = nnunet_labels(folder, files, (0,), False)
    assert ours.shape == theirs.shape
    assert len(np.unique(theirs)) >= 3, "the reference should segment several labels"
    for region, values in get_scheme("msd").regions.items():
        a, b = np.isin(ours, list(values)), np.isin(theirs, list(values))
        assert dice(a, b) >= 0.999, (region, int((a != b).sum()), int(b.sum()))
