import argparse
import pickle

import pytest
import torch

from brats_seg.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    make_checkpoint,
    model_from_checkpoint,
    preprocessing_of,
    save_checkpoint,
    spacing_of,
)
from brats_seg.config import PreprocessConfig
from brats_seg.conventions import MODALITIES
from brats_seg.errors import CheckpointError
from brats_seg.models.registry import build_model


def _ckpt(tmp_path, spacing=(1.0, 1.0, 2.5)):
    net = build_model("unet3d", preset="tiny")
    ckpt = make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs, channels=MODALITIES,
                           preprocessing=PreprocessConfig(normalization="percentile"), patch_size=(32, 32, 32),
                           spacing=spacing, provenance={"epoch": 3, "metrics": {"dice_wt": 0.5}})
    return net, save_checkpoint(ckpt, tmp_path / "ckpt" / "best.pt")


def test_round_trip_with_weights_only(tmp_path):
    net, path = _ckpt(tmp_path)
    raw = torch.load(path, weights_only=True)  # plain values only
    assert raw["format"] == CHECKPOINT_FORMAT and raw["channels"] == ["t1n", "t1c", "t2w", "t2f"]
    assert isinstance(raw["provenance"]["versions"]["torch"], str)
    assert set(raw["provenance"]["versions"]) == {"python", "brats_seg", "torch", "numpy", "monai"}
    ckpt = load_checkpoint(path)
    assert preprocessing_of(ckpt).normalization == "percentile"
    assert raw["spacing"] == [1.0, 1.0, 2.5] and spacing_of(ckpt) == (1.0, 1.0, 2.5)
    rebuilt = model_from_checkpoint(ckpt)
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), net.eval()(x))
    assert not list(path.parent.glob(".*tmp*"))


def test_pickle_needing_file_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": argparse.Namespace(a=1)}, path)  # any class instance needs the unpickler
    with pytest.raises(CheckpointError, match="refused") as e:
        load_checkpoint(path)
    assert "\x1b" not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize("content,message", [({"state_dict": {}}, "not a brats_seg checkpoint"),
                                             (b"garbage", "not a readable checkpoint")])
def test_foreign_files_refused(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_newer_format_and_missing_file(tmp_path):
    _, path = _ckpt(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["format"] = CHECKPOINT_FORMAT + 1
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_spacing_format_1_and_unknown(tmp_path):
    """Format-1 checkpoints (before spacing was recorded) still load, with no spacing; a format-2 file
    must hold the key (None: trained at an unknown spacing), and a bad spacing is refused."""
    _, path = _ckpt(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    old = {k: v for k, v in ckpt.items() if k != "spacing"}
    torch.save({**old, "format": 1}, tmp_path / "old.pt")
    assert spacing_of(load_checkpoint(tmp_path / "old.pt")) is None
    torch.save(old, tmp_path / "nokey.pt")
    with pytest.raises(CheckpointError, match="without spacing"):
        load_checkpoint(tmp_path / "nokey.pt")
    torch.save({**ckpt, "spacing": [1.0, 0.0, 1.0]}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="three positive numbers"):
        load_checkpoint(tmp_path / "bad.pt")
    _, unknown = _ckpt(tmp_path / "u", spacing=None)
    assert spacing_of(load_checkpoint(unknown)) is None
    with pytest.raises(CheckpointError, match="three positive numbers"):
        _ckpt(tmp_path / "v", spacing=(1.0, 1.0))
