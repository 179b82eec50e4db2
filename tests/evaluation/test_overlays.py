import numpy as np
import pytest

from brats_seg.evaluation.overlays import focus_point, overlay_figure, plane_slice, region_rgba
from helpers import tiny_volumes


def test_focus_point_is_mask_centre():
    mask = np.zeros((10, 12, 8))
    mask[2:5, 6:9, 3:6] = 1
    assert focus_point(mask) == (3, 7, 4)
    assert focus_point(np.zeros((10, 12, 8))) == (5, 6, 4)


def test_plane_slices_have_expected_shapes():
    vol = np.zeros((10, 12, 8))
    assert plane_slice(vol, "axial", (1, 1, 1)).shape == (12, 10)
    assert plane_slice(vol, "coronal", (1, 1, 1)).shape == (8, 10)
    assert plane_slice(vol, "sagittal", (1, 1, 1)).shape == (8, 12)


def test_inner_regions_drawn_on_top():
    regions = np.zeros((3, 2, 2), bool)
    regions[0] = True
    regions[1, 0] = True
    regions[2, 0, 0] = True
    rgba = region_rgba(regions)
    assert tuple(rgba[0, 0, :3]) == (0.9, 0.1, 0.1)   # ET red
    assert tuple(rgba[0, 1, :3]) == (1.0, 0.85, 0.1)  # TC yellow
    assert np.allclose(rgba[1, 1, :3], (0.15, 0.8, 0.2))  # WT green
    assert (rgba[..., 3] > 0).all()


def test_overlay_png_written(tmp_path):
    vols, label = tiny_volumes()
    out = tmp_path / "fig" / "overlay.png"
    overlay_figure(vols["flair"], {"reference": (label, "brats2021"), "prediction": (label, "brats2021")}, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert not list(out.parent.glob(".*tmp*"))


def test_overlays_draw_each_schemes_groups():
    """Issue 20: a brats2024-gli map draws its cavity (RC, blue) over WT/TC/ET; a MEN-RT map its GTV; the
    2017-2023 schemes WT, TC, ET as before."""
    from brats_seg.evaluation.overlays import REGION_COLORS, _masks, overlay_groups, region_rgba

    assert overlay_groups("brats2021") == ("WT", "TC", "ET")
    assert overlay_groups("brats2024-gli") == ("WT", "TC", "ET", "RC")
    assert overlay_groups("brats2024-ped") == ("WT", "TC", "ET", "CC")
    assert overlay_groups("brats2024-men-rt") == ("GTV",)
    labels = np.array([[[0, 1, 2, 3, 4]]], np.uint8)
    groups = ("WT", "TC", "ET", "RC", "GTV")
    masks = _masks(labels, "brats2024-gli", groups)
    assert masks[3].tolist() == [[[False, False, False, False, True]]] and not masks[4].any()
    rgba = region_rgba(masks[:, 0], groups=groups)
    assert tuple(rgba[0, 4, :3]) == pytest.approx(REGION_COLORS["RC"])
    assert tuple(rgba[0, 3, :3]) == pytest.approx(REGION_COLORS["ET"])
