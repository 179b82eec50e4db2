"""Synthetic cases: determinism, label schemes per layout, contrast, and passing `check`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brats_seg.conventions import get_scheme, labels_to_regions
from brats_seg.data.cases import discover_cases, load_case
from brats_seg.data.checks import check_case
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


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_raw_intensities_brain_and_tumor_contrast(seed):
    case = synthesize_case(seed, SPACING)
    brain = case.images["t1n"] > 0
    assert all(v.dtype == np.int16 and v.shape == (60, 60, 39) for v in case.images.values())
    assert all(np.array_equal(v > 0, brain) for v in case.images.values())  # skull-stripped, zero background
    assert 1.1e6 < brain.sum() * SPACING**3 < 1.9e6  # an adult brain, in mm^3
    wt, tc, et = case.regions
    assert et.any() and (tc & ~et).any() and (wt & ~tc).any()  # all three regions
    assert not (tc & ~wt).any() and not (et & ~tc).any()  # nested
    assert not (wt & ~brain).any()
    healthy = brain & ~wt
    med = {m: np.median(v[healthy]) for m, v in case.images.items()}
    # enhancing rim bright on T1-Gd; edema bright on T2 and FLAIR; core (not ET) darker than the rim on T1-Gd
    assert np.median(case.images["t1c"][et]) > 1.4 * med["t1c"]
    wm_like = healthy & (case.images["t1n"] > np.percentile(case.images["t1n"][healthy], 60))
    assert np.median(case.images["t2w"][wt & ~tc]) > 1.15 * np.median(case.images["t2w"][wm_like])
    assert np.median(case.images["t2f"][wt & ~tc]) > 1.15 * np.median(case.images["t2f"][wm_like])
    assert np.median(case.images["t1c"][tc & ~et]) < np.median(case.images["t1c"][et])
    assert 20 < med["t2w"] < 2000 and 50 < med["t1n"] < 3000  # raw scanner-like numbers, not normalized


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


def test_bad_arguments():
    with pytest.raises(BratsSegError, match="unknown synthetic layout"):
        synthesize_dataset("/tmp/never", 1, layout="nnunet")
    with pytest.raises(BratsSegError, match="spacing"):
        synthesize_case(0, 0.0)
