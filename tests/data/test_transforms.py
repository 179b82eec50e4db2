"""Training augmentation: each nnU-Net v2 transform's behaviour (statistics, range, shape, label integrity),
checked against nnU-Net's own batchgeneratorsv2 transforms given the same parameters; the pipelines as wholes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from batchgenerators.augmentations.utils import rotate_coords_3d
from batchgeneratorsv2.transforms.intensity.contrast import ContrastTransform
from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
from batchgeneratorsv2.transforms.noise.gaussian_blur import blur_dimension
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform

from brats_seg.data.augmentation.augment_config import AugmentConfig
from brats_seg.data.augmentation.nnunet_augment import (
    NnUNetAugmentation,
    bg_contrast,
    center_crop,
    contrast,
    gamma,
    gaussian_blur,
    gaussian_noise,
    initial_patch_size,
    low_resolution,
    rotate_scale,
)
from brats_seg.data.augmentation.pipelines import augmentation_input_size, build_augmentation, check_augmentation
from brats_seg.errors import ConfigError
from helpers import tiny_volumes, write_cache_entries

OFF = dict(p_rotate=0, p_scale=0, p_noise=0, p_blur=0, p_brightness=0, p_shift=0, p_contrast=0, p_lowres=0,
           p_gamma_inverted=0, p_gamma=0, p_flip=0)


def nnunet_get_patch_size(patch, degrees, min_scale=0.85):
    """nnU-Net v2's compute_initial_patch_size.get_patch_size (3-D), on batchgenerators' rotate_coords_3d."""
    rot = min(math.radians(degrees), math.pi / 2)
    coords = np.array(patch, dtype=float)
    final = np.copy(coords)
    for angles in ((rot, 0, 0), (0, rot, 0), (0, 0, rot)):
        final = np.max(np.vstack((np.abs(rotate_coords_3d(coords, *angles)), final)), 0)
    return (final / min_scale).astype(int)


@pytest.mark.parametrize("patch", [(128, 128, 128), (32, 32, 32), (128, 160, 112)])
def test_larger_crop_is_nnunets_rounded_to_the_patch_parity(patch):
    crop = initial_patch_size(patch, 30)
    ref = nnunet_get_patch_size(patch, 30)
    assert all(c - r in (0, 1) and (c - p) % 2 == 0 for c, r, p in zip(crop, ref, patch))
    assert initial_patch_size((128,) * 3, 30) == (206, 206, 206)  # nnU-Net: 205
    assert augmentation_input_size(AugmentConfig(), patch) == patch  # the monai pipeline crops the patch itself


def test_bg_contrast_draws_below_and_above_one_evenly():
    rng = np.random.RandomState(0)
    draws = np.array([bg_contrast(rng, 0.7, 1.5) for _ in range(4000)])
    assert draws.min() >= 0.7 and draws.max() <= 1.5
    assert abs((draws < 1).mean() - 0.5) < 0.03  # uniform on 0.7-1.5 would give 0.375


def test_rotate_scale_identity_is_the_exact_centre_crop():
    image = torch.rand(2, 20, 22, 24)
    label = torch.randint(0, 3, (1, 20, 22, 24)).float()
    out_image, out_label = rotate_scale(image, label, (10, 12, 14), [0, 0, 0], 1.0)
    assert torch.allclose(out_image, center_crop(image, (10, 12, 14)), atol=1e-5)
    assert torch.equal(out_label, center_crop(label, (10, 12, 14)))


def _ball(n=48, radius=10.0, value=2.0):
    grid = torch.stack(torch.meshgrid(*[torch.arange(n) - (n - 1) / 2] * 3, indexing="ij"))
    return ((grid**2).sum(0) < radius**2).float()[None] * value


def test_scaling_shrinks_objects_and_keeps_label_values():
    ball = _ball()
    ball[0, :3] = 4.0  # a second label at the edge, partly cut off
    _, out = rotate_scale(torch.ones_like(ball), ball, (40, 40, 40), [0, 0, 0], 1.25)  # >1 shrinks (nnU-Net)
    assert set(out.unique().tolist()) <= {0.0, 2.0, 4.0}
    ratio = (out == 2).sum().item() / (ball == 2).sum().item()
    assert ratio == pytest.approx(1 / 1.25**3, rel=0.08)


def test_rotation_of_the_larger_crop_brings_in_no_padding():
    patch = (32, 32, 32)
    crop = initial_patch_size(patch, 30)
    image = torch.ones(1, *crop)
    label = _ball(crop[0], 8.0)
    out, out_label = rotate_scale(image, label, patch, [math.radians(30), 0, 0], 1.0)
    assert out.shape == (1, *patch) and out.min() > 0.99  # nnU-Net's point: no zeros rotate in
    assert (out_label == 2).sum().item() == pytest.approx((label == 2).sum().item(), rel=0.05)
    # the same rotation of the patch itself (the monai pipeline) pads the corners with zeros
    on_patch, _ = rotate_scale(torch.ones(1, *patch), torch.zeros(1, *patch), patch, [math.radians(30), 0, 0], 1.0)
    assert (on_patch < 0.5).float().mean() > 0.05


def test_noise_is_one_field_added_to_every_channel():
    image = torch.randn(3, 24, 24, 24)
    out = gaussian_noise(image, 0.1, torch.Generator().manual_seed(0))
    added = out - image
    assert torch.allclose(added[0], added[1], atol=1e-5) and torch.allclose(added[0], added[2], atol=1e-5)
    assert added.std().item() == pytest.approx(0.1, rel=0.05) and abs(added.mean().item()) < 0.01


def test_blur_keeps_a_constant_and_matches_nnunet():
    const = torch.full((20, 20, 20), 3.0)
    assert torch.allclose(gaussian_blur(const, [1.0, 0.7, 0.5]), const)  # reflect padding: no dark border
    x = torch.randn(20, 22, 24)
    ours = gaussian_blur(x, [1.0, 0.75, 0.6])
    ref = x[None]
    for axis, sigma in enumerate([1.0, 0.75, 0.6]):
        ref = blur_dimension(ref, sigma, axis)
    assert ours.std() < 0.6 * x.std()
    assert torch.allclose(ours, ref[0], atol=2e-3)


def test_contrast_keeps_mean_and_range_and_matches_nnunet():
    image = torch.randn(2, 16, 16, 16) * 2 + 1
    ours = contrast(image[0], 0.8)
    assert ours.mean().item() == pytest.approx(image[0].mean().item(), abs=1e-4)  # shrinking never clips
    assert ours.std().item() == pytest.approx(0.8 * image[0].std().item(), rel=1e-4)
    wide = contrast(image[1], 1.25)
    assert wide.min() >= image[1].min() and wide.max() <= image[1].max()  # preserve_range
    ref = ContrastTransform(contrast_range=(1.25, 1.25), preserve_range=True, synchronize_channels=False)
    expected = ref._apply_to_image(image.clone(), apply_to_channel=torch.tensor([1]), multipliers=torch.tensor([1.25]))
    assert torch.allclose(wide, expected[1], atol=1e-5)


def test_low_resolution_keeps_shape_and_matches_nnunet():
    x = torch.randn(2, 20, 24, 28)
    ours = low_resolution(x[1], 0.6)
    assert ours.shape == x[1].shape and not torch.allclose(ours, x[1])
    assert torch.allclose(low_resolution(x[0], 1.0), x[0])
    ref = SimulateLowResolutionTransform(scale=(0.6, 0.6), synchronize_channels=False, synchronize_axes=True,
                                         ignore_axes=None)
    expected = ref._apply_to_image(x.clone(), apply_to_channel=torch.tensor([1]), scales=torch.tensor([[0.6] * 3]))
    assert torch.allclose(ours, expected[1], atol=1e-5)


@pytest.mark.parametrize("invert", [False, True])
def test_gamma_retains_statistics_and_matches_nnunet(invert):
    x = torch.rand(2, 12, 12, 12) * 3 - 1
    ours = gamma(x[0], 1.4, invert)
    assert ours.mean().item() == pytest.approx(x[0].mean().item(), abs=1e-4)
    assert ours.std().item() == pytest.approx(x[0].std().item(), rel=1e-3)
    assert not torch.allclose(ours, x[0], atol=1e-2)
    ref = GammaTransform(gamma=(1.4, 1.4), p_invert_image=float(invert), synchronize_channels=False, p_per_channel=1,
                         p_retain_stats=1)
    expected = ref._apply_to_image(x.clone(), apply_to_channel=torch.tensor([0]), retain_stats=torch.tensor([True]),
                                   invert_image=torch.tensor([invert]), gamma=torch.tensor([1.4]))
    assert torch.allclose(ours, expected[0], atol=1e-4)
    assert torch.isfinite(gamma(torch.zeros(8, 8, 8), 0.7, invert)).all()  # a constant channel stays finite


def _case(crop, seed=0):
    """A brain (nonzero in every channel) inside a zero background, with a labelled tumor."""
    rng = np.random.default_rng(seed)
    image = torch.zeros(4, *crop)
    inner = tuple(slice(n // 3, n - n // 3) for n in crop)
    image[(slice(None), *inner)] = torch.from_numpy(rng.normal(1.0, 0.3, (4, *image[0][inner].shape))).float()
    label = _ball(crop[0], crop[0] / 6)[:, :, : crop[1], : crop[2]]
    label[label > 0] = 4.0
    label[:, : crop[0] // 2][label[:, : crop[0] // 2] > 0] = 1.0
    return image, label


def test_nnunet_pipeline_everything_on():
    patch = (24, 24, 24)
    aug = NnUNetAugmentation(AugmentConfig(pipeline="nnunet", **{**OFF, **{k: 1.0 for k in OFF}}), patch)
    image, label = _case(aug.input_size)
    outs = []
    for seed in (0, 0, 1):
        aug.set_random_state(seed)
        outs.append(aug({"image": image.clone(), "label": label.clone()}))
    out = outs[0]
    assert out["image"].shape == (4, *patch) and out["label"].shape == (1, *patch)
    assert set(out["label"].unique().tolist()) <= {0.0, 1.0, 4.0}  # label values only, no -1 left
    assert torch.equal(out["image"], outs[1]["image"]) and not torch.equal(out["image"], outs[2]["image"])
    assert torch.isfinite(out["image"]).all()


def test_nnunet_pipeline_resets_the_background_and_mirrors():
    patch = (20, 20, 20)
    cfg = AugmentConfig(pipeline="nnunet", **{**OFF, "p_noise": 1.0, "p_flip": 1.0})
    aug = NnUNetAugmentation(cfg, patch)
    image, label = _case(aug.input_size)
    aug.set_random_state(3)
    out = aug({"image": image.clone(), "label": label.clone()})
    brain = center_crop(image, patch).flip((1, 2, 3))
    outside = (brain == 0).all(0)
    assert outside.any() and (out["image"][:, outside] == 0).all()  # noise removed outside the brain
    assert (out["image"][:, ~outside] != brain[:, ~outside]).all()  # and kept inside
    assert torch.equal(out["label"], center_crop(label, patch).flip((1, 2, 3)))


def test_nnunet_pipeline_with_nothing_on_is_the_centre_of_the_crop():
    patch = (16, 16, 16)
    aug = build_augmentation(AugmentConfig(pipeline="nnunet", **OFF), patch)
    image, label = _case(aug.input_size)
    aug.set_random_state(0)
    out = aug({"image": image, "label": label})
    assert torch.equal(out["image"], center_crop(image, patch)) and torch.equal(out["label"], center_crop(label, patch))


def test_monai_pipeline_new_transforms_only_when_asked():
    names = [type(t).__name__ for t in build_augmentation().transforms]
    assert not {"RandScaleIntensityFixedMeand", "RandSimulateLowResolutiond"} & set(names)
    cfg = AugmentConfig(p_contrast=1.0, p_lowres=1.0, p_gamma_inverted=1.0)
    aug = build_augmentation(cfg)
    aug.set_random_state(seed=0)
    out = aug({"image": torch.randn(4, 16, 16, 16), "label": torch.zeros(1, 16, 16, 16)})
    assert out["image"].shape == (4, 16, 16, 16) and torch.isfinite(torch.as_tensor(out["image"])).all()


@pytest.mark.parametrize("change, message", [
    ({"pipeline": "batchgen"}, "unknown augmentation pipeline 'batchgen'"),
    ({"pipeline": "nnunet", "p_elastic": 0.1}, "augmentation.p_elastic: pipeline 'nnunet' has no such transform"),
    ({"pipeline": "nnunet", "gamma_range": (1.1, 1.5)}, "gamma_range must contain 1 with pipeline 'nnunet'"),
    ({"p_noise": 1.5}, "augmentation.p_noise must be in [0, 1]"),
    ({"scale_range": (1.4, 0.7)}, "augmentation.scale_range must be (low, high)"),
])
def test_bad_augmentation_settings(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_augmentation(AugmentConfig(**change))


def test_loader_cuts_the_larger_crop_around_the_same_patch(tmp_path):
    """With every nnU-Net transform off, the larger crop's centre is exactly the patch the loader cuts without
    augmentation: the crop is centred on the same voxel, tumor-centred or not."""
    from brats_seg.data.loaders import PatchDataset

    vols, label = tiny_volumes(shape=(24, 24, 20))
    ids = write_cache_entries(tmp_path, {"c0": (np.stack(list(vols.values())), label, "brats2021")})
    plain = PatchDataset(tmp_path, ids, (16, 16, 16), augment=False, seed=4)
    nnunet = PatchDataset(tmp_path, ids, (16, 16, 16), augment=AugmentConfig(pipeline="nnunet", **OFF), seed=4)
    assert nnunet.crop_size == (26, 26, 26)
    for i in range(6):
        a, b = plain[i], nnunet[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    on = PatchDataset(tmp_path, ids, (16, 16, 16), augment=AugmentConfig(pipeline="nnunet", p_rotate=1.0), seed=4)
    sample = on[0]
    wt, tc, et = sample["label"].bool()
    assert sample["image"].shape == (4, 16, 16, 16) and not (tc & ~wt).any() and not (et & ~tc).any()


def test_only_samples_that_rotate_or_scale_get_the_larger_crop():
    import pickle

    aug = pickle.loads(pickle.dumps(NnUNetAugmentation(AugmentConfig(pipeline="nnunet"), (16, 16, 16))))  # spawn
    sizes = []
    for seed in range(400):
        aug.set_random_state(seed)
        sizes.append(aug.draw_crop_size())
    assert set(sizes) == {(16, 16, 16), aug.input_size}
    assert np.mean([s == (16, 16, 16) for s in sizes]) == pytest.approx(0.8 * 0.8, abs=0.07)
    aug.set_random_state(int(np.argmax([s != (16, 16, 16) for s in sizes])))
    aug.draw_crop_size()  # rotation or scaling drawn: a patch-sized crop cannot serve
    with pytest.raises(ValueError, match="needs a \\(26, 26, 26\\) crop"):
        aug({"image": torch.rand(4, 16, 16, 16), "label": torch.zeros(1, 16, 16, 16)})


def test_monai_pipeline_scales_every_axis_within_the_range():
    """Each axis of the ``monai`` pipeline's scaling draws its own factor in ``scale_range``."""
    box = torch.zeros(1, 48, 48, 48)
    box[:, 16:32, 16:32, 16:32] = 1
    transform = build_augmentation(AugmentConfig(**{**OFF, "p_scale": 1.0, "rotate_degrees": 0.0}))
    extents = []
    for seed in range(12):
        transform.set_random_state(seed=seed)
        out = transform({"image": box.clone(), "label": box.clone()})["label"][0]
        idx = np.nonzero(np.asarray(out))
        extents.append([int(i.max() - i.min() + 1) for i in idx])
    extents = np.array(extents)
    assert (extents != 16).any(axis=0).all(), extents  # every axis is scaled in some draws
    assert extents.min() >= 16 / 1.4 - 1 and extents.max() <= 16 / 0.7 + 1, extents
