"""Training patches over the preprocessing cache: shapes, foreground share, determinism, regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brats_seg.conventions import labels_to_regions
from brats_seg.data.loaders import (
    EpochSampler,
    PatchDataset,
    is_foreground_sample,
    iter_validation_cases,
    make_train_loader,
)
from brats_seg.data.preprocessing.cache import cached_case_ids
from brats_seg.errors import CaseError
from helpers import tiny_volumes, write_cache_entries


def write_cache(out, n=3, shape=(40, 36, 32), scheme="brats2021"):
    """A cache folder in the preprocess format with small tumors far from the centre."""
    cases = {}
    for i in range(n):
        vols, label = tiny_volumes(shape=(24, 24, 20), seed=i)
        image = np.zeros((4, *shape), np.float32)
        lab = np.zeros(shape, np.uint8)
        image[:, 2:26, 3:27, 4:24] = np.stack(list(vols.values()))
        lab[2:26, 3:27, 4:24] = label
        if scheme == "brats2023":
            lab[lab == 4] = 3
        cases[f"case{i}"] = (image, lab, scheme)
    return write_cache_entries(out, cases)


def test_foreground_rule_gives_at_least_a_third():
    for b in (1, 2, 3, 4, 8):
        share = np.mean([is_foreground_sample(i, b, 0.34) for i in range(b * 30)])
        assert share >= 1 / 3


def test_patches_shape_regions_and_foreground(tmp_path):
    ids = write_cache(tmp_path / "cache")
    assert cached_case_ids(tmp_path / "cache") == ids
    ds = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), batch_size=3, augment=False, seed=1)
    samples = [ds[i] for i in range(30)]
    for s in samples:
        assert s["image"].shape == (4, 16, 16, 16) and s["image"].dtype == torch.float32
        assert s["label"].shape == (3, 16, 16, 16) and s["label"].dtype == torch.float32
        wt, tc, et = s["label"].bool()
        assert not (tc & ~wt).any() and not (et & ~tc).any()  # nested
    fg = [s["label"][0].sum() > 0 for i, s in enumerate(samples) if is_foreground_sample(i, 3, 0.34)]
    assert len(fg) >= 10 and all(fg)
    # deterministic per (seed, index); different seeds differ
    again = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), batch_size=3, augment=False, seed=1)
    assert torch.equal(again[7]["image"], samples[7]["image"])
    other = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), batch_size=3, augment=False, seed=2)
    assert not all(torch.equal(other[i]["image"], samples[i]["image"]) for i in range(5))


def test_unaugmented_patch_is_a_crop_of_the_case(tmp_path):
    ids = write_cache(tmp_path / "cache", n=1)
    ds = PatchDataset(tmp_path / "cache", ids, (8, 8, 8), batch_size=1, augment=False, seed=0, in_memory=False)
    img = np.load(tmp_path / "cache" / "case0_image.npy")
    lab = np.load(tmp_path / "cache" / "case0_label.npy")
    s = ds[0]
    patch = s["image"].numpy()
    # find the crop position and check labels match there
    hits = [(x, y, z) for x in range(33) for y in range(29) for z in range(25)
            if np.array_equal(img[:, x:x + 8, y:y + 8, z:z + 8], patch)]
    assert len(hits) >= 1
    x, y, z = hits[0]
    assert np.array_equal(labels_to_regions(lab[x:x + 8, y:y + 8, z:z + 8], "brats2021"), s["label"].numpy() > 0)


def test_augmented_loader_with_workers_and_2023_scheme(tmp_path):
    ids = write_cache(tmp_path / "cache", scheme="brats2023")
    loader = make_train_loader(tmp_path / "cache", ids, (16, 16, 16), 2, num_workers=2, seed=0, steps_per_epoch=3)
    batches = list(loader)
    assert len(batches) == 3
    assert batches[0]["image"].shape == (2, 4, 16, 16, 16) and batches[0]["label"].shape == (2, 3, 16, 16, 16)
    assert set(torch.unique(batches[0]["label"]).tolist()) <= {0.0, 1.0}
    # ET (label 3 in brats2023) reaches the ET channel in foreground samples
    assert any(b["label"][:, 2].sum() > 0 for b in batches)
    # same epoch again, other worker count: the same data (up to float rounding of the thread count)
    loader0 = make_train_loader(tmp_path / "cache", ids, (16, 16, 16), 2, num_workers=0, seed=0, steps_per_epoch=3)
    first = next(iter(loader0))
    assert torch.allclose(first["image"], batches[0]["image"], atol=1e-3)
    assert torch.equal(first["label"], batches[0]["label"])
    loader0.sampler.set_epoch(1)
    assert not torch.equal(next(iter(loader0))["image"], batches[0]["image"])


def test_every_augmentation_fires_and_keeps_labels_binary(tmp_path):
    from brats_seg.data.augmentation.augment_config import AugmentConfig

    ids = write_cache(tmp_path / "cache", n=1)
    always = AugmentConfig(p_rotate=1, p_scale=1, p_elastic=1, p_noise=1, p_blur=1, p_brightness=1, p_shift=1,
                           p_gamma=1, p_flip=1)
    plain = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), batch_size=1, augment=False, fg_fraction=1.0)[0]
    s = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), batch_size=1, augment=always, fg_fraction=1.0)[0]
    assert s["image"].shape == plain["image"].shape and not torch.equal(s["image"], plain["image"])
    assert set(torch.unique(s["label"]).tolist()) <= {0.0, 1.0} and s["label"][0].sum() > 0
    wt, tc, et = s["label"].bool()
    assert not (tc & ~wt).any() and not (et & ~tc).any()


def test_sampler_ranks_are_disjoint():
    a, b = EpochSampler(4, rank=0, world_size=2), EpochSampler(4, rank=1, world_size=2)
    a.set_epoch(3)
    b.set_epoch(3)
    assert set(a).isdisjoint(set(b)) and len(set(a) | set(b)) == 8


def test_validation_iterator_and_missing_case(tmp_path):
    ids = write_cache(tmp_path / "cache", n=2)
    got = list(iter_validation_cases(tmp_path / "cache", ids))
    assert [c.case_id for c, _ in got] == ids
    assert got[0][1].shape == (3, 40, 36, 32) and got[0][1][0].sum() > 0
    with pytest.raises(CaseError, match="nope"):
        list(iter_validation_cases(tmp_path / "cache", ["nope"]))
