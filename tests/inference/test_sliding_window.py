"""Sliding-window engine: exact oracles (identity network), window geometry, empty-window reuse."""

from __future__ import annotations

import pytest
import torch

from brats_seg.inference.sliding_window import gaussian_importance, sliding_window, window_starts


def identity_net(channels: int) -> torch.nn.Module:
    net = torch.nn.Conv3d(channels, channels, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1, 1))
    return net.eval()


class Counting(torch.nn.Module):
    """A 3x3x3 conv with bias (output depends on position in the window) that counts windows."""

    def __init__(self, c_in=2, c_out=3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(c_in, c_out, 3, padding=1)
        self.windows = 0

    def forward(self, x):
        self.windows += x.shape[0]
        return self.conv(x)


@pytest.mark.parametrize("shape,window,overlap", [
    ((23, 17, 19), (8, 8, 8), 0.5),
    ((23, 17, 19), (8, 6, 10), 0.25),
    ((16, 16, 16), (16, 16, 16), 0.5),
    ((9, 30, 7), (12, 8, 12), 0.0),      # smaller than the window along two axes
    ((5, 4, 3), (8, 8, 8), 0.75),        # smaller than the window everywhere
    ((31, 12, 20), (7, 12, 9), 0.6),
])
def test_identity_network_returns_input(shape, window, overlap):
    torch.manual_seed(1)
    image = torch.randn(2, 3, *shape)
    image[:, :, : shape[0] // 3] = 0  # a background slab: exercises the empty-window path
    out = sliding_window(image, identity_net(3), window, overlap=overlap, batch_size=3)
    assert out.shape == image.shape
    torch.testing.assert_close(out, image, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size,window,overlap", [(100, 32, 0.5), (33, 32, 0.5), (240, 128, 0.5),
                                                 (155, 128, 0.25), (57, 10, 0.0), (10, 10, 0.9)])
def test_window_starts_cover_and_end_at_border(size, window, overlap):
    starts = window_starts(size, window, overlap)
    assert starts[0] == 0 and starts[-1] + window == size
    steps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0 < s <= max(1, int(window * (1 - overlap))) for s in steps)
    # mirroring the axis mirrors the windows (test-time mirroring stays exact)
    assert sorted(size - window - a for a in starts) == starts


def test_gaussian_importance_is_symmetric_positive_and_cached():
    g = gaussian_importance((8, 9, 10))
    assert g.shape == (8, 9, 10) and float(g.max()) == pytest.approx(1.0, abs=1e-6) and float(g.min()) > 0
    for axis in range(3):
        torch.testing.assert_close(g, g.flip(axis))
    assert gaussian_importance((8, 9, 10)) is g
    # sigma = window / 8, centred between the two middle voxels of an even window
    h = gaussian_importance((1, 1, 80))[0, 0].double()
    x = torch.arange(80, dtype=torch.float64) - 39.5
    expected = torch.exp(-0.5 * (x / 10.0) ** 2)
    torch.testing.assert_close(h, expected / expected.max(), rtol=1e-5, atol=1e-7)


def test_empty_windows_reuse_one_output_exactly():
    torch.manual_seed(2)
    image = torch.zeros(1, 2, 40, 24, 24)
    image[:, :, 30:, 5:15, 5:15] = torch.randn(1, 2, 10, 10, 10)
    net = Counting()
    fast = sliding_window(image, net, (8, 8, 8), overlap=0.5, skip_empty=True)
    n_fast = net.windows
    net.windows = 0
    slow = sliding_window(image, net, (8, 8, 8), overlap=0.5, skip_empty=False)
    assert n_fast < net.windows / 2  # most windows are background
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    assert fast.shape == (1, 3, 40, 24, 24)


def test_blending_of_a_position_dependent_network_is_a_weighted_mean():
    """One window covering the volume: the output is the network's output unchanged."""
    image = torch.randn(1, 2, 8, 8, 8)
    net = Counting()
    out = sliding_window(image, net, (8, 8, 8), overlap=0.5)
    torch.testing.assert_close(out, net(image).detach(), rtol=1e-5, atol=1e-6)


def test_deep_supervision_list_output_uses_full_resolution():
    net = identity_net(2)
    out = sliding_window(torch.randn(1, 2, 12, 12, 12), lambda x: [net(x), x[:, :, ::2, ::2, ::2]], (8, 8, 8))
    assert out.shape == (1, 2, 12, 12, 12)
