"""Normalizers: exact oracles on hand-made volumes."""

from __future__ import annotations

import numpy as np
import pytest

from brats_seg.data.preprocessing.normalization import NORMALIZERS, get_normalizer
from brats_seg.errors import BratsSegError, ConfigError


def _volume(seed=0):
    rng = np.random.default_rng(seed)
    x = (300 + 50 * rng.standard_normal((12, 10, 8))).astype(np.float32)
    mask = np.zeros(x.shape, bool)
    mask[2:10, 2:8, 1:7] = True
    x[~mask] = 0
    return x, mask


def test_registry_names_and_unknown_lists_valid():
    assert set(NORMALIZERS) == {"zscore", "percentile", "none", "nnunet_zscore_mask", "nnunet_zscore",
                                "monai_nonzero_channelwise"}
    with pytest.raises(ConfigError, match="zscore"):
        get_normalizer("minmax")


def test_zscore_mean0_std1_inside_mask_background_zero():
    x, mask = _volume()
    out = get_normalizer("zscore")(x, mask, channel="t1n")
    assert out.dtype == np.float32 and out.shape == x.shape
    assert abs(out[mask].mean()) < 1e-5
    assert abs(out[mask].std() - 1) < 1e-5
    assert np.all(out[~mask] == 0)
    # statistics ignore the background: identical result whatever the background holds
    y = x.copy()
    y[~mask] = 1000
    np.testing.assert_allclose(get_normalizer("zscore")(y, mask)[mask], out[mask], rtol=1e-6)


def test_zscore_zero_std_raises_naming_channel():
    x = np.zeros((6, 6, 6), np.float32)
    mask = np.zeros(x.shape, bool)
    mask[1:4, 1:4, 1:4] = True
    x[mask] = 42.0
    with pytest.raises(BratsSegError, match="channel t2f.*std 0"):
        get_normalizer("zscore")(x, mask, channel="t2f")


def test_percentile_range_and_clipping():
    x, mask = _volume(1)
    x[3, 3, 3] = 1e5  # an outlier is clipped, not allowed to squash the scale
    out = get_normalizer("percentile", clip_percentiles=(1, 99))(x, mask)
    assert out.min() == 0 and out.max() == pytest.approx(1.0)
    assert out[3, 3, 3] == pytest.approx(1.0)
    assert np.all(out[~mask] == 0)
    lo, hi = np.percentile(x[mask], (1, 99))
    inside = (x > lo) & (x < hi) & mask
    np.testing.assert_allclose(out[inside], (x[inside] - lo) / (hi - lo), rtol=1e-4, atol=1e-6)
    assert 0.3 < out[mask].mean() < 0.7


def test_percentile_bad_config_and_constant():
    with pytest.raises(ConfigError):
        get_normalizer("percentile", clip_percentiles=(99, 1))
    x = np.ones((4, 4, 4), np.float32)
    with pytest.raises(BratsSegError, match="channel c"):
        get_normalizer("percentile")(x, x > 0, channel="c")


def test_none_keeps_values():
    x, mask = _volume()
    out = get_normalizer("none")(x.astype(np.int16), mask)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.int16).astype(np.float32))
