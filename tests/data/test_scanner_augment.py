"""Scanner-shaped augmentation with known input and known output: thick slices change the one axis they
act on (slab means, linear in between) and nothing else; the bias field is exactly the polynomial's
exponential; both leave the label alone and are off (no random draws) by default."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from brats_seg.data.augmentation.augment_config import AugmentConfig
from brats_seg.data.augmentation.pipelines import build_augmentation
from brats_seg.data.augmentation.scanner_augment import bias_field, bias_terms, thick_slices
from brats_seg.errors import ConfigError


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thick_slices_known_output(axis):
    n = 12
    ramp = torch.arange(n, dtype=torch.float32)
    shape = [4, 5, 6]
    shape[axis] = n
    along = ramp.reshape([n if a == axis else 1 for a in range(3)]).expand(shape).contiguous()
    # a linear ramp along the axis: slab means lie on the same line, so the interior comes back exactly
    out = thick_slices(along, axis, 3)
    inner = [slice(None)] * 3
    inner[axis] = slice(1, n - 1)
    assert torch.allclose(out[tuple(inner)], along[tuple(inner)], atol=1e-5)
    # a sharp edge along the axis is blurred across it
    step = (along >= 6).float()
    assert not torch.allclose(thick_slices(step, axis, 4), step)
    # what varies only along the OTHER axes is not changed at all
    other = torch.randn(shape).mean(dim=axis, keepdim=True).expand(shape).contiguous()
    assert torch.allclose(thick_slices(other, axis, 3), other, atol=1e-6)
    assert torch.equal(thick_slices(step, axis, 1), step)


def test_thick_slices_are_slab_means():
    x = torch.zeros(2, 2, 8)
    x[..., 0:4] = torch.tensor([0.0, 2.0, 4.0, 6.0])
    x[..., 4:8] = 10.0
    out = thick_slices(x, 2, 4)
    # slab means 3 and 10 at slice positions 1.5 and 5.5; linear between, constant outside
    expected = torch.tensor([3.0, 3.0, 3.0 + 7 * 0.5 / 4, 3.0 + 7 * 1.5 / 4, 3.0 + 7 * 2.5 / 4, 3.0 + 7 * 3.5 / 4,
                             10.0, 10.0])
    assert torch.allclose(out[0, 0], expected, atol=1e-5)


def test_bias_field_known_output():
    terms = bias_terms()
    assert len(terms) == 20 and terms[0] == (0, 0, 0)
    c = np.zeros(20)
    c[terms.index((1, 0, 0))] = 0.5
    field = bias_field((3, 2, 2), c)
    assert torch.allclose(field[:, 0, 0], torch.exp(torch.tensor([-0.5, 0.0, 0.5])))
    assert torch.equal(bias_field((3, 2, 2), np.zeros(20)), torch.ones(3, 2, 2))


def test_options_change_the_image_only_and_are_off_by_default():
    image = torch.rand(2, 16, 16, 16)
    label = (torch.rand(1, 16, 16, 16) > 0.5).float()
    quiet = dict(p_rotate=0.0, p_scale=0.0, p_noise=0.0, p_blur=0.0, p_brightness=0.0, p_shift=0.0, p_gamma=0.0,
                 p_flip=0.0)
    off = build_augmentation(AugmentConfig(**quiet), (16, 16, 16)).set_random_state(seed=1)
    out = off({"image": image.clone(), "label": label.clone()})
    assert torch.equal(torch.as_tensor(out["image"]), image)
    on = build_augmentation(AugmentConfig(**quiet, p_thick_slices=1.0, p_bias_field=1.0), (16, 16, 16))
    out = on.set_random_state(seed=1)({"image": image.clone(), "label": label.clone()})
    assert torch.equal(torch.as_tensor(out["label"]), label) and not torch.allclose(out["image"], image)
    again = on.set_random_state(seed=1)({"image": image.clone(), "label": label.clone()})
    assert torch.equal(again["image"], out["image"])  # seeded: the same draw
    with pytest.raises(ConfigError, match="thick_slice_factor"):
        build_augmentation(dataclasses.replace(AugmentConfig(), thick_slice_factor=(0, 2)))
