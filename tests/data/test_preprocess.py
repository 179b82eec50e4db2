"""Preprocessing: crop box, resampling, restore, the .npy cache (idempotency, bad cases)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from brats_seg.config import PreprocessConfig
from brats_seg.data.preprocessing.cache import load_cached
from brats_seg.data.preprocessing.grid import foreground_bbox, restore
from brats_seg.data.preprocessing.preprocess import preprocess_dataset, preprocess_volumes
from brats_seg.data.reading.cases import CaseVolumes
from brats_seg.data.reading.image_io import Image
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.errors import BratsSegError
from helpers import tiny_affine, tiny_volumes, write_nifti

CHANNELS = ("t1n", "t1c", "t2w", "t2f")


def _vol(shape=(30, 28, 22), spacing=(1.0, 1.0, 1.0), seed=0, case_id="c0") -> CaseVolumes:
    """Tiny case padded into a bigger zero grid so cropping has work to do."""
    vols, label = tiny_volumes(seed=seed)
    image = np.zeros((4, *shape), np.float32)
    lab = np.zeros(shape, np.uint8)
    off = (3, 2, 1)
    sl = tuple(slice(o, o + n) for o, n in zip(off, label.shape))
    for c, name in enumerate(("t1", "t1ce", "t2", "flair")):
        image[(c, *sl)] = vols[name]
    lab[sl] = label
    image[0, 3, 2, 1] = image[1, 26, 25, 20] = 50.0  # corners that fix the brain's box
    ref = Image(np.zeros(shape, np.float32), tiny_affine(spacing))
    return CaseVolumes(case_id, image, CHANNELS, lab, ref, "brats2021")


def test_bbox_exact_on_hand_made_volume():
    image = np.zeros((2, 10, 12, 8), np.float32)
    image[0, 2:5, 3:7, 1:2] = 1
    image[1, 4:8, 5:6, 6:8] = -3  # negative values are foreground too
    assert foreground_bbox(image) == [[2, 8], [3, 7], [1, 8]]
    assert foreground_bbox(image, margin=2) == [[0, 10], [1, 9], [0, 8]]
    label = np.zeros((10, 12, 8), np.uint8)
    label[9, 11, 0] = 2  # a label voxel outside the brain still fits in the box
    assert foreground_bbox(image, label) == [[2, 10], [3, 12], [0, 8]]
    with pytest.raises(BratsSegError, match="all channels are zero"):
        foreground_bbox(np.zeros((1, 3, 3, 3)))


def test_crop_then_restore_is_exact_and_normalized():
    vol = _vol()
    pre = preprocess_volumes(vol, PreprocessConfig(normalization="none"))
    p = pre.properties
    assert p["bbox"] == [[3, 27], [2, 26], [1, 21]]
    assert pre.image.shape == (4, 24, 24, 20) and pre.image.dtype == np.float32
    assert pre.label.dtype == np.uint8 and p["label_scheme"] == "brats2021"
    np.testing.assert_array_equal(restore(pre.image, p, order=1), vol.image)
    np.testing.assert_array_equal(restore(pre.label, p), vol.label)
    json.dumps(p)  # JSON-able
    z = preprocess_volumes(vol, PreprocessConfig())
    brain = np.any(vol.image != 0, axis=0)[tuple(slice(a, b) for a, b in p["bbox"])]
    assert np.allclose(z.image[:, brain].mean(axis=1), 0, atol=1e-4)
    assert np.allclose(z.image[:, brain].std(axis=1), 1, atol=1e-4)
    assert np.all(z.image[:, ~brain] == 0)
    # no crop: same grid
    full = preprocess_volumes(vol, PreprocessConfig(crop=False, normalization="none"))
    assert full.image.shape == vol.image.shape


def test_resample_and_restore_round_trip_shape_and_affine():
    vol = _vol(spacing=(1.0, 1.0, 2.0))
    pre = preprocess_volumes(vol, PreprocessConfig(spacing=(2.0, 2.0, 2.0)))
    p = pre.properties
    assert p["cropped_shape"] == [24, 24, 20]
    assert pre.image.shape == (4, 12, 12, 20) and pre.label.shape == (12, 12, 20)
    assert p["spacing"] == [2.0, 2.0, 2.0] and p["original_spacing"] == [1.0, 1.0, 2.0]
    np.testing.assert_array_equal(np.asarray(p["affine"]), vol.reference.affine)
    back = restore(pre.label, p)
    assert back.shape == vol.label.shape and back.dtype == np.uint8
    wt, wt0 = back > 0, vol.label > 0
    assert 2 * (wt & wt0).sum() / (wt.sum() + wt0.sum()) > 0.85
    probs = restore(pre.image[:3], p, order=1)
    assert probs.shape == (3, *vol.label.shape)
    # the preprocessed grid's affine puts the tumor at the same place in the world
    def centre(mask, affine):
        return (affine @ np.r_[np.argwhere(mask).mean(axis=0), 1.0])[:3]
    np.testing.assert_allclose(centre(pre.label > 0, np.asarray(p["preprocessed_affine"])),
                               centre(wt0, vol.reference.affine), atol=0.6)
    with pytest.raises(BratsSegError, match="preprocessed shape"):
        restore(np.zeros((5, 5, 5)), p)


def test_zero_std_channel_names_case_and_channel():
    vol = _vol()
    vol.image[2][np.any(vol.image != 0, axis=0)] = 7.0
    with pytest.raises(BratsSegError, match="case c0: channel t2w"):
        preprocess_volumes(vol, PreprocessConfig())


def test_restore_reproduces_real_cases_exactly(shared_data):
    """Crop only: the restored label and (raw) images equal the originals voxel for voxel."""
    cases = discover_cases(shared_data / "brats2018") + discover_cases(shared_data / "brats-gli")
    assert len(cases) == 5
    for case in cases:
        vol = load_case(case)
        pre = preprocess_volumes(vol, PreprocessConfig(normalization="none"))
        p = pre.properties
        assert tuple(p["original_shape"]) == vol.label.shape
        assert pre.image.shape[1:] == pre.label.shape and pre.label.size < vol.label.size
        assert p["label_scheme"] == ("brats2023" if "GLI" in case.case_id else "brats2021")
        assert np.array_equal(restore(pre.label, p), vol.label), case.case_id
        assert np.array_equal(restore(pre.image, p, order=1), vol.image), case.case_id


def _dataset(root: Path, n: int) -> Path:
    for i in range(n):
        vols, label = tiny_volumes(seed=i)
        cid = f"BraTS2021_{i:05d}"
        for name, v in vols.items():
            write_nifti(root / cid / f"{cid}_{name}.nii.gz", v)
        write_nifti(root / cid / f"{cid}_seg.nii.gz", label)
    return root


def test_cache_written_idempotent_and_loadable(tmp_path):
    data, out = _dataset(tmp_path / "data", 2), tmp_path / "cache"
    cfg = PreprocessConfig()
    rep = preprocess_dataset(data, out, cfg, workers=1, progress=False)
    assert sorted(rep.done) == ["BraTS2021_00000", "BraTS2021_00001"] and not rep.skipped and rep.ok
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["cases"] == ["BraTS2021_00000", "BraTS2021_00001"] and ds["config"]["normalization"] == "zscore"
    cached = load_cached(out, "BraTS2021_00000")
    assert isinstance(cached.image, np.memmap) and cached.image.dtype == np.float32
    fresh = preprocess_volumes(load_case(discover_cases(data)[0]), cfg)
    np.testing.assert_array_equal(np.asarray(cached.image), fresh.image)
    np.testing.assert_array_equal(np.asarray(cached.label), fresh.label)
    assert cached.properties["label_scheme"] == "brats2021" and "fingerprint" in cached.properties

    again = preprocess_dataset(data, out, cfg, workers=1, progress=False)
    assert not again.done and sorted(again.skipped) == ["BraTS2021_00000", "BraTS2021_00001"]
    assert "2 up to date (skipped)" in again.summary()

    # a touched input re-runs only its case; a changed config re-runs everything
    seg = data / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz"
    st = seg.stat()
    os.utime(seg, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = preprocess_dataset(data, out, cfg, workers=1, progress=False)
    assert touched.done == ["BraTS2021_00001"] and touched.skipped == ["BraTS2021_00000"]
    changed = preprocess_dataset(data, out, PreprocessConfig(normalization="percentile"), workers=1, progress=False)
    assert len(changed.done) == 2 and not changed.skipped
    assert load_cached(out, "BraTS2021_00000", mmap=False).image.max() <= 1.0
    with pytest.raises(BratsSegError, match="no preprocessed case"):
        load_cached(out, "nope")


def test_bad_case_reported_others_done_no_partial_files(tmp_path):
    data, out = _dataset(tmp_path / "data", 3), tmp_path / "cache"
    bad = data / "BraTS2021_00001" / "BraTS2021_00001_t2.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated gzip
    rep = preprocess_dataset(data, out, PreprocessConfig(), workers=2, progress=False)
    assert sorted(rep.done) == ["BraTS2021_00000", "BraTS2021_00002"]
    assert list(rep.failed) == ["BraTS2021_00001"]
    assert rep.failed["BraTS2021_00001"].startswith("case BraTS2021_00001:")
    assert "BraTS2021_00001_t2.nii.gz" in rep.failed["BraTS2021_00001"]
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if "00001" in n or ".tmp" in n], left
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["cases"] == ["BraTS2021_00000", "BraTS2021_00002"] and "BraTS2021_00001" in ds["failed"]


def test_n4_removes_a_bias_field():
    """With --n4, a smooth multiplicative bias across a homogeneous brain is (mostly) removed."""
    shape = (40, 40, 32)
    idx = np.indices(shape).astype(np.float32)
    r = sum(((idx[i] - (n - 1) / 2) / (n * 0.42)) ** 2 for i, n in enumerate(shape))
    brain = r <= 1
    rng = np.random.default_rng(0)
    bias = np.exp(0.4 * (idx[0] / shape[0] - 0.5))
    chan = np.where(brain, (200 + 5 * rng.standard_normal(shape)) * bias, 0).astype(np.float32)
    vol = CaseVolumes("n4", np.stack([chan] * 4), CHANNELS, None, Image(chan, tiny_affine()), None)

    pre = preprocess_volumes(vol, PreprocessConfig(normalization="none", n4=True))
    plain = preprocess_volumes(vol, PreprocessConfig(normalization="none"))
    m = np.any(plain.image != 0, axis=0)
    xs = np.indices(m.shape)[0][m]

    def trend(img):  # correlation of intensity with the biased axis, inside the brain
        return abs(np.corrcoef(xs, img[0][m])[0, 1])

    assert trend(plain.image) > 0.8
    assert trend(pre.image) < 0.5 * trend(plain.image)
    assert np.all(pre.image[:, ~m] == 0) and pre.properties["config"]["n4"] is True
    assert pre.label is None and pre.properties["label_scheme"] is None


def test_unlabeled_and_ambiguous_cases(tmp_path):
    """A case without a label map is cached without one; a case with two files for one modality fails."""
    data, out = _dataset(tmp_path / "data", 2), tmp_path / "cache"
    (data / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz").unlink()
    t1 = data / "BraTS2021_00001" / "BraTS2021_00001_t1.nii.gz"
    (data / "BraTS2021_00001" / "BraTS2021_00001_t1.nii").write_bytes(b"")  # a second t1 file
    rep = preprocess_dataset(data, out, PreprocessConfig(), workers=1, progress=False)
    assert rep.done == ["BraTS2021_00000"] and list(rep.failed) == ["BraTS2021_00001"]
    assert "duplicate t1n" in rep.failed["BraTS2021_00001"] and t1.name in rep.failed["BraTS2021_00001"]
    cached = load_cached(out, "BraTS2021_00000")
    assert cached.label is None and not (out / "BraTS2021_00000_label.npy").exists()
    assert cached.image.shape[0] == 4 and cached.properties["has_label"] is False
