"""Preparation recovers known motion, and segmentation in native space agrees with the untouched case.

The scans are made from a real BraTS case (:mod:`brats_seg.prepare.simulate`): each sequence
moved by a known rigid motion (up to 15 degrees, 20 mm), T2/FLAIR in 4-5 mm slices, the T1c
stored in another voxel order, the T1n written as a DICOM series."""

from __future__ import annotations

import json

import numpy as np
import pytest
from brainref import dice
from conftest import SIM_CASE

from brats_seg.conventions import labels_to_regions
from brats_seg.data.reading.checks import check_case
from brats_seg.data.reading.image_io import read_image
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.prepare.simulate import ras_ordered, registration_error
from brats_seg.prepare.spatial_transforms import read_transform

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_registration_error_under_2mm_over_the_brain(simulated, segmented):
    """Target registration error (TRE) over the brain: the mean under 2 mm (the issue's figure), the
    worst point under 3 mm. The worst point is not held to 2 mm: on this case it measured 1.2-2.03 mm
    over seeds 1-5 and SimpleITK thread counts 1/2/16 (the optimiser's path depends on the summation
    order), because the "known" answer is itself off by about half a millimetre: registering the
    untouched BraTS T2 onto its T1c finds 0.15-0.56 mm along z and up to 0.5 degrees (4 cases)."""
    _, truth = simulated
    folder = segmented.prepared.folder
    t1c = segmented.prepared.scans.series["t1c"].image
    ijk = np.argwhere(t1c.array > 0)[::20]
    points = ijk @ t1c.affine[:3, :3].T + t1c.affine[:3, 3]
    for m in ("t1n", "t2w", "t2f"):
        record = segmented.prepared.record["registrations"][m]
        error = registration_error(read_transform(folder / record["transform"]), truth, m, points)
        assert error.mean() < 2.0 and error.max() < 3.0, (m, float(error.mean()), float(error.max()))
        assert record["passed"] and record["sharpness"] >= 0.35


def test_prepared_case_is_a_valid_brats_case(segmented):
    prepared = segmented.prepared
    record = json.loads((prepared.folder / "prepare.json").read_text())
    assert record["qc"]["passed"] and record["brain_extraction"]["method"] == "none"
    assert "skull-stripped" in record["brain_extraction"]["why"]
    assert record["orientation"] == {"t1n": "LPS", "t1c": "RAS", "t2w": "LPS", "t2f": "LPS"} or \
        record["orientation"]["t1c"] != record["orientation"]["t2w"]
    assert set(record["seconds"]) >= {"co-registration", "atlas registration", "resampling"}
    assert json.loads((prepared.folder / "sequences.json").read_text())["sequences"]["t1n"]["kind"] == "dicom"
    for name in ("t1n_to_t1c.tfm", "t2w_to_t1c.tfm", "t2f_to_t1c.tfm", "t1c_to_atlas.tfm", "qc.png"):
        assert (prepared.folder / name).stat().st_size > 0, name
    case = discover_cases(prepared.folder)[0]
    assert case.layout == "brats2023" and case.modalities == ("t1n", "t1c", "t2w", "t2f")
    result = check_case(case)
    assert result.ok, result.errors
    vol = load_case(case)
    assert vol.image.shape == (4, 182, 218, 182) and np.allclose(vol.spacing, 1.0)


def test_native_segmentation_agrees_with_the_untouched_case(shared_data, segmented, rule_predictor):
    """Same network on the untouched case and on the scanner-like copy: per region, the Dice against
    the expert labels differs by at most 0.05 (measured: see the assertion message)."""
    case = discover_cases(shared_data / "brats2018" / SIM_CASE)[0]
    vol = load_case(case)
    untouched = rule_predictor.predict(vol).labels
    affine = vol.reference.affine
    # the simulated T1c is the original array stored RAS-ordered: flip the same way, exactly
    ref = labels_to_regions(ras_ordered(vol.label, affine)[0], "brats2021")
    before = labels_to_regions(ras_ordered(untouched, affine)[0], "brats2021")
    after = labels_to_regions(segmented.native["t1c"], "brats2021")
    scores = {r: (dice(b, g), dice(a, g), dice(a, b)) for r, b, a, g in zip(("WT", "TC", "ET"), before, after, ref)}
    for d_before, d_after, agreement in scores.values():
        assert abs(d_after - d_before) <= 0.05, scores
        assert agreement >= 0.85, scores
    assert scores["WT"][0] > 0.9  # the rule network does segment this case


def test_native_outputs_have_each_inputs_geometry(simulated, segmented):
    folder, truth = simulated
    out = segmented.prepared.folder / "segmentation"
    for m in ("t1c", "t2f", "t1n"):
        source = segmented.prepared.scans.series[m].image
        labels = read_image(out / f"labels_in_{m}_space.nii.gz", dtype=None)
        assert labels.array.dtype == np.uint8 and labels.shape == source.shape
        np.testing.assert_allclose(labels.affine, source.affine, atol=1e-4)
        probs = read_image(out / f"probabilities_in_{m}_space.nii.gz")
        assert probs.shape == (*source.shape, 3) and 0 <= probs.array.min() and probs.array.max() <= 1
    # the thick FLAIR's labels are the T1c's labels seen through the known motions
    assert segmented.native["t2f"].any() and set(np.unique(segmented.native["t2f"])) <= {0, 1, 2, 4}
    record = json.loads((out / "segment.json").read_text())
    assert record["label_scheme"] == "brats2021" and "labels_t1n" in record["files"]


def test_dicom_seg_over_the_dicom_input(segmented):
    """Every frame of the SEG names its source slice and segment; its pixels are our labels there."""
    import pydicom

    seg = pydicom.dcmread(str(segmented.prepared.folder / "segmentation" / "labels_in_t1n_space.dcm"))
    source = segmented.prepared.scans.series["t1n"]
    slice_of = {pydicom.dcmread(str(f), stop_before_pixels=True).SOPInstanceUID: k for k, f in enumerate(source.files)}
    assert seg.StudyInstanceUID == source.tags["study_uid"] and len(seg.SegmentSequence) == 5  # 3 labels, WT, TC
    labels = segmented.native["t1n"]
    frames = seg.pixel_array
    assert int(seg.NumberOfFrames) == 5 * labels.shape[2] and frames.shape[1:] == labels.shape[1::-1]
    value_of = {1: [1], 2: [2], 3: [4], 4: [1, 2, 4], 5: [1, 4]}  # segment number -> brats2021 labels
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        assert np.array_equal(frame.T > 0, np.isin(labels[:, :, slice_of[uid]], value_of[number]))
    assert frames.any()
