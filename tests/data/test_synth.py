"""Synthetic cases: determinism, label schemes per layout, contrast, and passing `check`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from brats_seg.conventions import get_scheme, labels_to_regions
from brats_seg.data.reading.checks import check_case
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.data.synth import grid_shape, synthesize_case, synthesize_dataset
from brats_seg.errors import BratsSegError

SPACING = 4.0  # 60x60x39: fast


def test_grid_shapes():
    assert grid_shape(1.0) == (240, 240, 155)
    assert grid_shape(2.0) == (120, 120, 78)
    assert grid_shape(4.0) == (60, 60, 39)


def test_deterministic_per_seed():
    a, b, c = synthesize_case(5, SPACING), synthesize_case(5, SPACING), synthesize_case(6, SPACING)
    for m in a.images:
        np.testing.assert_array_equal(a.images[m], b.images[m])
        assert not np.array_equal(a.images[m], c.images[m])
    np.testing.assert_array_equal(a.regions, b.regions)
    assert not np.array_equal(a.regions, c.regions)


def test_raw_intensities_brain_and_tumor_contrast():
    ratios = []
    for seed in range(4):
        case = synthesize_case(seed, SPACING)
        im = case.images
        brain = im["t1n"] > 0
        assert all(v.dtype == np.int16 and v.shape == (60, 60, 39) for v in im.values())
        assert all(np.array_equal(v > 0, brain) for v in im.values())  # skull-stripped, zero background
        assert 1.1e6 < brain.sum() * SPACING**3 < 1.9e6  # an adult brain, in mm^3
        wt, tc, et = case.regions
        assert et.any() and (tc & ~et).any() and (wt & ~tc).any()  # all three regions
        assert not (tc & ~wt).any() and not (et & ~tc).any()  # nested
        assert not (wt & ~brain).any()
        assert 20 < np.median(im["t2w"][brain]) < 2000 and 50 < np.median(im["t1n"][brain]) < 3000  # raw numbers
        # contrast against healthy white-matter-like tissue within 50 mm (the bias field varies across the brain)
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(np.indices(brain.shape), case.info["tumor_centre"])))
        near = brain & ~wt & (dist * SPACING < 50)
        wm = near & (im["t1n"] > np.percentile(im["t1n"][near], 60))

        pairs = [("t1c", et), ("t1c", tc & ~et), ("t2w", tc & ~et), ("t2w", wt & ~tc), ("t2f", wt & ~tc)]
        ratios.append([np.median(im[m][mask]) / np.median(im[m][wm]) for m, mask in pairs])
    r = np.asarray(ratios)
    assert np.all(r[:, 0] > 1.05) and np.all(r[:, 0] > r[:, 1])  # enhancing rim bright on T1-Gd, core darker
    assert np.all(r[:, 2] > 1.1)  # necrosis/core bright on T2
    mean = r.mean(axis=0)
    assert mean[0] > 1.2 and mean[1] < 0.95 and mean[3] > 1.1 and mean[4] > 1.1  # edema bright on T2 and FLAIR


def test_tissue_contrast_follows_each_sequence():
    """T1: WM > CSF; T2: CSF > WM; FLAIR: CSF dark. The ventricles sit at the brain's centre."""
    case = synthesize_case(11, 2.0)
    brain = case.images["t1n"] > 0
    idx = np.argwhere(brain)
    c = idx.mean(0).astype(int)
    box = tuple(slice(ci - 6, ci + 7) for ci in c)  # around the centre: ventricles and deep WM
    t1, t2, fl = (case.images[m][box].astype(float) for m in ("t1n", "t2w", "t2f"))
    inside = brain[box] & ~case.regions[0][box]
    csf_like = inside & (t2 > np.percentile(t2[inside], 90))
    wm_like = inside & (t1 > np.percentile(t1[inside], 70))
    assert csf_like.any() and wm_like.any()
    assert t1[csf_like].mean() < 0.7 * t1[wm_like].mean()
    assert fl[csf_like].mean() < 0.7 * fl[wm_like].mean()
    assert t2[csf_like].mean() > 1.5 * t2[wm_like].mean()


@pytest.mark.parametrize("layout,values", [("brats2021", {0, 1, 2, 4}), ("brats2023", {0, 1, 2, 3}),
                                           ("msd", {0, 1, 2, 3})])
def test_layouts_write_checkable_cases_in_their_scheme(tmp_path, layout, values):
    out = tmp_path / layout
    summary = synthesize_dataset(out, 2, layout=layout, seed=3, spacing=SPACING, progress=False)
    assert summary["label_scheme"] == layout and len(summary["cases"]) == 2
    cases = discover_cases(out)
    assert [c.case_id for c in cases] == summary["cases"] and all(c.layout == layout for c in cases)
    for i, case in enumerate(cases):
        result = check_case(case)
        assert result.ok, result.errors
        vol = load_case(case)
        assert set(np.unique(vol.label).tolist()) == values
        regions = labels_to_regions(vol.label, get_scheme(layout))
        assert all(r.any() for r in regions)
        # files hold exactly what synthesize_case(seed + i) makes, channels by name (MSD: FLAIR first)
        ref = synthesize_case(3 + i, SPACING)
        for ch, m in enumerate(vol.channels):
            np.testing.assert_array_equal(vol.image[ch], ref.images[m])
        np.testing.assert_array_equal(regions, ref.regions)
        np.testing.assert_allclose(vol.reference.spacing, (SPACING,) * 3)
    if layout == "msd":
        meta = json.loads((out / "dataset.json").read_text())
        assert meta["numTraining"] == 2 and meta["modality"]["0"] == "FLAIR"
        import nibabel as nib

        assert nib.load(str(cases[0].images["t2f"])).shape == (60, 60, 39, 4)


def test_case_ids_say_synthetic_and_never_name_a_real_case(shared_data):
    """`BraTS2021_00002` (once a synthetic id) is a real case in the shared data; synthetic ids read as synthetic."""
    from brats_seg.data.synth import case_ids

    assert case_ids("brats2021", 2, seed=2) == ["Synth_00002", "Synth_00003"]
    assert case_ids("brats2023", 1, seed=12) == ["BraTS-SYNTH-00012-000"]
    assert case_ids("msd", 1, seed=1000) == ["Synth_01000"]  # never an nnU-Net channel file name (_0000)
    real = {c.case_id for sub in ("brats2018", "brats2021", "brats2023", "brats-gli")
            for c in discover_cases(shared_data / sub)}
    assert "BraTS2021_00002" in real and "BraTS-GLI-00012-000" in real
    ours = {i for layout in ("brats2021", "brats2023", "msd") for i in case_ids(layout, 600)}
    assert not ours & real and all("synth" in i.lower() for i in ours)


def test_bad_arguments():
    with pytest.raises(BratsSegError, match="unknown synthetic layout"):
        synthesize_dataset("/tmp/never", 1, layout="nnunet")
    with pytest.raises(BratsSegError, match="spacing"):
        synthesize_case(0, 0.0)


@pytest.mark.parametrize("scheme, fluid", [("brats2024-gli", 4), ("brats2024-ped", 3)])
def test_synth_2024_tasks_write_fluid_at_the_tumor_core(tmp_path, capsys, scheme, fluid):
    """Issue 20: ``synth --label-scheme brats2024-gli`` writes a resection cavity (4: no longer tumor, with tumor
    around its rim), ``brats2024-ped`` a cyst (3, inside the core); fluid is bright on T2 and darker than the
    brain on T1; the ids let ``check`` detect the scheme."""
    from brats_seg.cli import main

    out = tmp_path / "synth"
    assert main(["synth", str(out), "--cases", "1", "--spacing", "3", "--label-scheme", scheme, "--quiet"]) == 0
    (case,) = discover_cases(out)
    assert check_case(case).label_scheme == scheme
    vol = load_case(case)
    label = np.asarray(vol.label)
    assert (label == fluid).sum() > 10
    brain = vol.image[0] > 0
    t1n, t2w = (vol.image[vol.channels.index(m)] for m in ("t1n", "t2w"))
    assert np.median(t2w[label == fluid]) > 2 * np.median(t2w[brain & (label == 0)])
    assert np.median(t1n[label == fluid]) < 0.5 * np.median(t1n[brain & (label == 0)])
    shell = ndimage.binary_dilation(label == fluid, np.ones((3, 3, 3), bool)) & (label != fluid)
    core = {"brats2024-gli": {1, 3}, "brats2024-ped": {1, 2}}[scheme]  # NETC, ET
    assert core & set(np.unique(label[shell]).tolist())  # tumor core around the fluid
    with pytest.raises(BratsSegError, match="only as brats2024-gli or brats2024-ped"):
        synthesize_dataset(tmp_path / "x", 1, layout="msd", label_scheme=scheme, progress=False)
