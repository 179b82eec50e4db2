"""One device picker for training, search and prediction: ``brats_seg.devices.pick_device``."""

import pytest
import torch

from brats_seg.devices import pick_device
from brats_seg.errors import ConfigError


def test_default_and_named_devices():
    assert pick_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu") == pick_device(torch.device("cpu"))
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        pick_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_clear_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pick_device("cuda:0")

