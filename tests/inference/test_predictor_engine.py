"""Predictor with in-memory networks: channels by name, TTA of equivariant networks, ensemble weights,
uncertainty, geometry restored to the input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brats_seg.config import PreprocessConfig
from brats_seg.data.preprocessing.grid import restore
from brats_seg.data.preprocessing.preprocess import preprocess_volumes
from brats_seg.data.reading.cases import CaseVolumes
from brats_seg.data.reading.image_io import Image
from brats_seg.errors import BratsSegError, CaseError
from brats_seg.inference.ensemble import ProbabilityAverager, binary_entropy, normalized_weights
from brats_seg.inference.predictor import Member, Predictor
from brats_seg.inference.predictor_config import PredictorConfig
from helpers import tiny_affine, tiny_volumes

CHANNELS = ("t1n", "t1c", "t2w", "t2f")


def tiny_case(shape=(24, 24, 20)) -> CaseVolumes:
    vols, label = tiny_volumes(shape)
    image = np.stack([vols[k] for k in ("t1", "t1ce", "t2", "flair")])
    return CaseVolumes("case_1", image, CHANNELS, label, Image(image[0], tiny_affine()), "brats2021")


class PickChannel(torch.nn.Module):
    """Logits of all three regions = input channel ``k`` (a 1x1x1 conv)."""

    def __init__(self, k: int, c_in: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv3d(c_in, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, k] = 1.0

    def forward(self, x):
        return self.conv(x)


class Constant(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32).reshape(1, 3, 1, 1, 1))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 3, *x.shape[2:]).clone()


def symmetric_conv(seed=0) -> torch.nn.Module:
    """3x3x3 conv whose kernels are symmetric under every flip: equivariant to mirroring."""
    torch.manual_seed(seed)
    conv = torch.nn.Conv3d(4, 3, 3, padding=1)
    with torch.no_grad():
        w = conv.weight
        for axes in ([2], [3], [4]):
            w.copy_((w + w.flip(axes)) / 2)
    return torch.nn.Sequential(conv, torch.nn.Tanh(), torch.nn.Conv3d(3, 3, 1)).eval()


def member(net, channels=CHANNELS, window=(16, 16, 16), **kw) -> Member:
    return Member(net, tuple(channels), PreprocessConfig(), window, **kw)


def test_channels_matched_by_name_and_restored_to_the_input_grid():
    vol = tiny_case()
    # the network wants FLAIR first; it outputs its first channel as logits
    m = member(PickChannel(0), channels=("t2f", "t1n", "t1c", "t2w"))
    pred = Predictor([m], device="cpu", overlap=0.25).predict(vol)
    pre = preprocess_volumes(vol, PreprocessConfig())
    flair = pre.image[CHANNELS.index("t2f")]
    expected = restore(1 / (1 + np.exp(-flair)), pre.properties, order=1)
    assert pred.probabilities.shape == (3, 24, 24, 20) and pred.labels.shape == (24, 24, 20)
    assert pred.labels.dtype == np.uint8
    np.testing.assert_allclose(pred.probabilities[2], expected, rtol=1e-5, atol=1e-6)
    assert pred.info["bbox"] == pre.properties["bbox"]


def test_missing_channel_is_a_case_error():
    vol = tiny_case()
    vol = CaseVolumes(vol.case_id, vol.image[:3], CHANNELS[:3], None, vol.reference, None)
    with pytest.raises(CaseError, match="case_1.*t2f"):
        Predictor([member(PickChannel(0))], device="cpu").predict(vol)


def test_tta_of_an_equivariant_network_changes_nothing():
    vol = tiny_case((21, 26, 19))
    net = symmetric_conv()
    plain = Predictor([member(net, window=(16, 16, 16))], device="cpu", tta=0).predict(vol)
    mirrored = Predictor([member(net, window=(16, 16, 16))], device="cpu", tta=8).predict(vol)
    np.testing.assert_allclose(mirrored.probabilities, plain.probabilities, rtol=1e-5, atol=1e-6)
    assert plain.probabilities.std() > 0.01  # the network is not trivially constant


def test_a_config_object_and_keywords_give_the_same_predictor():
    vol = tiny_case((21, 26, 19))
    config = PredictorConfig(device="cpu", tta=8, overlap=0.25)
    by_config = Predictor([member(symmetric_conv())], config)
    by_keywords = Predictor([member(symmetric_conv())], device="cpu", tta=8, overlap=0.25)
    changed = Predictor([member(symmetric_conv())], config, tta=0)
    assert by_config.config == by_keywords.config == config and changed.config.tta == 0 and config.tta == 8
    assert by_config.settings() == by_keywords.settings()
    np.testing.assert_array_equal(by_config.predict(vol).labels, by_keywords.predict(vol).labels)
    with pytest.raises(BratsSegError, match="unknown predictor setting.*ttaa"):
        Predictor([member(symmetric_conv())], ttaa=8)


def test_tta_of_a_non_equivariant_network_does_change_the_result():
    vol = tiny_case((21, 26, 19))
    torch.manual_seed(3)
    net = torch.nn.Conv3d(4, 3, 3, padding=1).eval()
    a = Predictor([member(net)], device="cpu", tta=0).predict(vol).probabilities
    b = Predictor([member(net)], device="cpu", tta=8).predict(vol).probabilities
    assert np.abs(a - b).max() > 1e-3


def test_ensemble_weights_average_probabilities():
    vol = tiny_case()
    logits_a, logits_b = [2.0, 0.0, -1.0], [-3.0, 1.0, 0.5]
    pred = Predictor([member(Constant(logits_a)), member(Constant(logits_b))], device="cpu",
                     weights=[3, 1], uncertainty="variance").predict(vol)
    sig = lambda v: 1 / (1 + np.exp(-np.asarray(v)))  # noqa: E731
    expected = 0.75 * sig(logits_a) + 0.25 * sig(logits_b)
    bbox = pred.info["bbox"]
    inside = pred.probabilities[(slice(None), *[slice(lo, hi) for lo, hi in bbox])]
    np.testing.assert_allclose(inside.reshape(3, -1).mean(1), expected, rtol=1e-5)
    np.testing.assert_allclose(inside.reshape(3, -1).std(1), 0, atol=1e-6)
    assert pred.probabilities[:, 0].max() == 0  # outside the brain's box: background
    var = 0.75 * 0.25 * (sig(logits_a) - sig(logits_b)) ** 2
    np.testing.assert_allclose(pred.uncertainty[(slice(None), *[slice(lo, hi) for lo, hi in bbox])]
                               .reshape(3, -1).mean(1), var, rtol=1e-4)


def test_averager_and_entropy():
    avg = ProbabilityAverager(track_variance=True)
    for p, w in ((0.2, 1.0), (0.6, 3.0)):
        avg.add(torch.full((2,), p), w)
    assert float(avg.mean()[0]) == pytest.approx(0.5)
    assert float(avg.variance()[0]) == pytest.approx((0.09 * 1 + 0.01 * 3) / 4, rel=1e-5)
    assert float(binary_entropy(torch.tensor(0.5))) == pytest.approx(1.0)
    assert float(binary_entropy(torch.tensor(1.0))) < 1e-4
    assert normalized_weights([1, 3], 2) == [0.25, 0.75]
    with pytest.raises(ValueError):
        normalized_weights([1], 2)


def test_float_buffers_cover_the_brain_box_only():
    """Probabilities are kept on the brain's box; the whole-grid map is made only when asked."""
    shape = (40, 36, 30)
    vol = tiny_case(shape)
    pred = Predictor([member(PickChannel(3))], device="cpu").predict(vol)
    box = pred.box
    assert pred.box_probabilities.shape == (3, *[hi - lo for lo, hi in box])
    assert np.prod(pred.box_probabilities.shape[1:]) < 0.8 * np.prod(shape)  # the ellipsoid's box, not the grid
    full = pred.probabilities
    assert full.shape == (3, *shape) and full.dtype == np.float32
    np.testing.assert_array_equal(full[(slice(None), *[slice(lo, hi) for lo, hi in box])], pred.box_probabilities)
    assert full.sum() == pytest.approx(pred.box_probabilities.sum(), rel=1e-6)
    assert pred.labels.dtype == np.uint8 and pred.labels.shape == shape
