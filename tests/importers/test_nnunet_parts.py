"""The parts of the nnU-Net path checked one by one against nnU-Net's own functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brats_seg.data.preprocessing.normalization import get_normalizer
from brats_seg.inference.sliding_window import nnunet_importance, window_starts


@pytest.mark.parametrize("use_mask", [True, False])
def test_zscore_equals_nnunet(use_mask):
    from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
    from nnunetv2.preprocessing.normalization.default_normalization_schemes import ZScoreNormalization

    rng = np.random.default_rng(0)
    image = np.zeros((1, 20, 18, 16), np.float32)
    image[0, 3:17, 2:15, 4:14] = rng.gamma(2.0, 100.0, (14, 13, 10))
    image[0, 8:10, 8:10, 8:10] = 0  # a hole: inside nnU-Net's filled mask
    data, seg, _ = crop_to_nonzero(image.copy())
    theirs = ZScoreNormalization(use_mask_for_norm=use_mask, intensityproperties={}).run(data[0].copy(), seg[0])
    from scipy.ndimage import binary_fill_holes

    mask = binary_fill_holes(data[0] != 0)
    ours = get_normalizer("nnunet_zscore_mask" if use_mask else "nnunet_zscore")(data[0], mask)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("window", [(24, 32, 40), (64, 64, 48)])
def test_gaussian_and_steps_equal_nnunet(window):
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

    theirs = compute_gaussian(window, value_scaling_factor=1, dtype=torch.float32, device=torch.device("cpu"))
    torch.testing.assert_close(nnunet_importance(window), theirs, rtol=1e-6, atol=1e-7)
    for size in (window[0], window[0] + 1, 2 * window[0] + 7, 155):
        if size >= window[0]:
            assert window_starts(size, window[0], 0.5) == compute_steps_for_sliding_window(
                (size,), (window[0],), 0.5)[0]


def test_openvino_all_zero_windows_use_torch(tmp_path):
    """Instance norm of an all-zero window is ill-conditioned (OpenVINO's logits there differ from
    PyTorch's by about their own size); the sliding window computes that window with the torch module."""
    from nnunet_folder import write_trained_folder

    from brats_seg.inference.backends import make_runner
    from brats_seg.inference.members import member_from_checkpoint
    from brats_seg.inference.sliding_window import sliding_window

    m = member_from_checkpoint(write_trained_folder(tmp_path))
    runner = make_runner("openvino", m.network, in_channels=4, window=m.window, device=torch.device("cpu"),
                         precision="fp32", channels_last=False)
    image = torch.zeros(1, 4, 80, 64, 48)
    image[:, :, :30, :30, :20] = torch.randn(1, 4, 30, 30, 20)
    expected = sliding_window(image, m.network, m.window, weights="nnunet")
    got = sliding_window(image, runner.run, m.window, weights="nnunet", empty_network=m.network)
    assert float((got - expected).abs().max()) < 1e-2


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_mirrored_windows_on_other_backends_equal_torch(tmp_path, backend):
    """With mirroring on, ONNX Runtime/OpenVINO run a graph of one pass on each mirrored copy (the graph
    holding all eight took more memory than nnU-Net): the logits equal the torch module's, which mirrors inside."""
    from nnunet_folder import write_trained_folder

    from brats_seg.inference.backends import make_runner
    from brats_seg.inference.members import member_from_checkpoint

    m = member_from_checkpoint(write_trained_folder(tmp_path))
    m.network.set_mirroring(True)
    runner = make_runner(backend, m.network, in_channels=4, window=m.window, device=torch.device("cpu"),
                         precision="fp32", channels_last=False)
    assert m.network.mirroring and len(m.network.mirror_dims()) == 8
    window = torch.randn(2, 4, *m.window)
    with torch.inference_mode():
        expected = m.network(window)
        m.network.set_mirroring(False)
        unmirrored = m.network(window)
    got = runner.run(window)
    assert float((unmirrored - expected).abs().max()) > 0.1  # mirroring changes the logits
    assert float((got - expected).abs().max()) < 1e-3
