"""Real scanner output (../shared/data/clinical): preparation succeeds, QC passes, results land right."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from brainref import dice, tissue_reference
from scipy import ndimage as ndi

from brats_seg.cli import main
from brats_seg.data.reading.image_io import read_image
from brats_seg.errors import CaseError
from brats_seg.prepare import BRAIN_EXTRACTORS, scan_set_from_folder, segment_case
from brats_seg.prepare.sitk_images import to_sitk
from brats_seg.prepare.spatial_transforms import array_of, image_of, read_transform, resample, source_to_atlas

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def t1c_only_checkpoint(path):
    """A tiny untrained U-Net that reads only the T1c (for plumbing: geometry, files, exit codes)."""
    import torch

    from brats_seg.checkpoint import make_checkpoint, save_checkpoint
    from brats_seg.config import PreprocessConfig
    from brats_seg.models.registry import build_model

    torch.manual_seed(0)
    net = build_model("unet3d", in_channels=1, features=[4, 8], strides=[1, 2], deep_supervision=False)
    ckpt = make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs, channels=["t1c"],
                           preprocessing=PreprocessConfig(spacing=(3.0, 3.0, 3.0)), patch_size=(32, 32, 32))
    return save_checkpoint(ckpt, path)


def test_whole_head_t1c_segment_cli(shared_data, tmp_path, capsys):
    """TCGA-02-0003 (whole-head T1c, 6.5 mm slices, NRRD): ``brats-seg segment`` with a T1c-only model
    prepares (deepbet), passes QC, writes labels with the NRRD's geometry; the tumour outline that
    ships with the scan lies inside the brain mask, and goes to the atlas and back intact."""
    folder = shared_data / "clinical" / "TCGA-02-0003"
    model = t1c_only_checkpoint(tmp_path / "t1c.pt")
    out = tmp_path / "seg"
    assert main(["segment", str(folder), "--model", str(model), "--out", str(out), "--native", "all",
                 "--no-progress"]) == 0
    case = out / "TCGA-02-0003"
    record = json.loads((case / "prepare.json").read_text())
    assert record["qc"]["passed"] and record["brain_extraction"]["method"] == "deepbet"
    assert "not skull-stripped" in record["brain_extraction"]["why"]
    assert list(record["registrations"]) == ["atlas"]
    t1c = read_image(folder / "t1c.nrrd")
    labels = read_image(case / "segmentation" / "labels_in_t1c_space.nii.gz", dtype=None)
    assert labels.shape == t1c.shape and labels.array.dtype == np.uint8
    np.testing.assert_allclose(labels.affine, t1c.affine, atol=1e-4)
    assert "t1c <- t1c.nrrd" in capsys.readouterr().err

    # the tumour outline, carried to the atlas through the saved transform, lies in the brain mask
    atlas_to_t1c = read_transform(case / "t1c_to_atlas.tfm")
    tumour = to_sitk(read_image(folder / "tumor_mask.nrrd"))
    mask = read_image(case / "TCGA-02-0003-brain_mask.nii.gz", dtype=None)
    in_atlas = array_of(resample(tumour, to_sitk(mask), atlas_to_t1c)) > 0.5
    assert in_atlas.sum() > 1000 and (in_atlas & (mask.array > 0)).sum() / in_atlas.sum() > 0.9
    # ... and back onto the native grid: the same outline (thick slices lose a little at the edges)
    back = array_of(resample(image_of(in_atlas.astype(np.float32), to_sitk(mask)), tumour,
                             source_to_atlas(atlas_to_t1c, None))) > 0.5
    assert dice(back, array_of(tumour) > 0) > 0.8


def test_low_grade_glioma_as_exported(shared_data, tmp_path):
    """TCGA-FG-6692 (4 sequences, skull on, 5.5 mm slices, own fields of view): preparation passes QC
    and the whole tumour, mapped onto the FLAIR's own grid, lands on the hyperintensity the native
    FLAIR shows (found there without any registration: the largest bright blob inside the brain)."""
    from rulenet import rule_predictor

    scans = scan_set_from_folder(shared_data / "clinical" / "TCGA-FG-6692")
    seg = segment_case(scans, rule_predictor(wt_sd=1.5, min_component=5000), tmp_path, native=("t1c", "t2f"),
                       progress=False)
    assert seg.passed, seg.prepared.record["registrations"]
    assert seg.prepared.record["brain_extraction"]["method"] == "deepbet"
    flair = scans.series["t2f"]
    grid = to_sitk(flair.image)
    # the brain on the FLAIR's grid (from the T1c's brain mask, through the FLAIR's rigid transform)
    brain = array_of(resample(sitk.Cast(seg.prepared.native_brain, sitk.sitkFloat32), grid,
                              seg.prepared.rigid["t2f"].GetInverse())) > 0.5
    smooth = ndi.gaussian_filter(flair.image.array, 1.5)
    bright = (smooth > smooth[brain].mean() + 2 * smooth[brain].std()) & ndi.binary_erosion(brain, iterations=3)
    blobs, _ = ndi.label(bright)
    reference = blobs == np.bincount(blobs.ravel())[1:].argmax() + 1
    wt = seg.native["t2f"] > 0
    assert reference.sum() * np.prod(flair.image.spacing) > 5000  # a lesion of more than 5 mL
    near = ndi.binary_dilation(reference, iterations=3)
    assert (wt & near).sum() / wt.sum() > 0.6, (int(wt.sum()), int((wt & near).sum()))

    def centre(mask):
        return flair.image.affine[:3, :3] @ np.argwhere(mask).mean(0) + flair.image.affine[:3, 3]

    assert np.linalg.norm(centre(wt) - centre(reference)) < 15.0


def test_none_is_refused_for_a_head_with_skull(shared_data):
    head = read_image(shared_data / "clinical" / "healthy-head" / "t1.nii.gz")
    with pytest.raises(CaseError, match="does not look stripped .44% of voxels at the minimum, 3462 mL above it"):
        BRAIN_EXTRACTORS["none"].run(to_sitk(head))


@pytest.mark.parametrize("name, min_dice", [("deepbet", 0.9), ("robex", 0.9)])
def test_brain_extraction_on_a_healthy_head(shared_data, name, min_dice):
    """Each back-end against the tissue reference (tests/prepare/brainref.py: brain tissue, no outer
    CSF, so Dice ~0.93 is the ceiling): it keeps the brain (sensitivity >= 0.97) and no more than a
    margin of CSF around it."""
    head = read_image(shared_data / "clinical" / "healthy-head" / "t1.nii.gz")
    reference = tissue_reference(head.array)
    mask = array_of(BRAIN_EXTRACTORS[name].run(to_sitk(head))) > 0
    assert dice(mask, reference) >= min_dice
    assert (mask & reference).sum() / reference.sum() >= 0.97
    assert 1.2 < mask.sum() * np.prod(head.spacing) / 1e6 < 1.9  # litres
