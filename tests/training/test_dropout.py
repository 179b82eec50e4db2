"""Modality dropout in training: per-sample draws, the value a dropped channel holds after augmentation
(CPU and on-device paths), config checks, and what the checkpoint records."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch
from trainhelp import write_toy_cache

from brats_seg.checkpoint import load_checkpoint, required_channels_of, trained_subsets_of
from brats_seg.cli import main
from brats_seg.conventions import MODALITIES
from brats_seg.data.augmentation.augment_config import AugmentConfig
from brats_seg.data.augmentation.gpu_augment import DeviceAugmentation, augment_batches
from brats_seg.data.loaders import PatchDataset
from brats_seg.data.subsets import MISSING_VALUE, ModalityDropout, all_subsets, parse_subset, trained_subsets
from brats_seg.errors import ConfigError

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "2",
        "--epochs", "1", "--folds", "1", "--workers", "0", "--threads", "1", "--no-progress"]
# every intensity transform fires: a dropped channel left alone before them would not stay 0
LOUD = AugmentConfig(p_rotate=1.0, p_scale=1.0, p_noise=1.0, p_blur=0.0, p_brightness=1.0, p_shift=1.0,
                     p_gamma=0.0, p_flip=0.5)


def test_subsets_enumerated_and_parsed():
    subsets = all_subsets()
    assert len(subsets) == 15 and len(set(subsets)) == 15
    assert subsets[:4] == [("t1n",), ("t1c",), ("t2w",), ("t2f",)] and subsets[-1] == MODALITIES
    assert parse_subset("FLAIR,t1ce") == ("t1c", "t2f") == parse_subset("t1c+t2f")
    for bad in ("", "t1c+pd", "t1c+t2f+x"):
        with pytest.raises(ConfigError):
            parse_subset(bad)
    with pytest.raises(ConfigError, match="not one of the input channels"):
        parse_subset("t1n", channels=("t1c", "t2f"))
    assert trained_subsets(MODALITIES, 0.0, None) == [MODALITIES]
    assert trained_subsets(MODALITIES, 0.5, ["t2f", "t1c+t2f"]) == [("t2f",), ("t1c", "t2f"), MODALITIES]
    assert trained_subsets(MODALITIES, 1.0, ["t2f"]) == [("t2f",)]  # every sample dropped: never complete
    assert len(trained_subsets(MODALITIES, 1.0, None)) == 15


def test_draws_are_per_sample_uniform_and_never_empty():
    drop = ModalityDropout.from_config(MODALITIES, 1.0, None)
    draws = [tuple(drop.draw(7, i)) for i in range(3000)]
    assert all(any(d) for d in draws)
    counts = Counter(draws)
    assert len(counts) == 15 and min(counts.values()) > 3000 / 15 * 0.7  # uniform over the 15 subsets
    assert [tuple(drop.draw(7, i)) for i in range(50)] == draws[:50]  # a pure function of (seed, index)
    assert [tuple(drop.draw(8, i)) for i in range(50)] != draws[:50]
    half = ModalityDropout.from_config(MODALITIES, 0.5, None)
    complete = np.mean([half.draw(0, i).all() for i in range(3000)])
    assert complete == pytest.approx(0.5 + 0.5 / 15, abs=0.04)
    assert ModalityDropout.from_config(MODALITIES, 0.0, None) is None


def test_dropped_channels_hold_the_missing_value_after_augmentation(tmp_path):
    ids = write_toy_cache(tmp_path / "cache", n=2)
    kwargs = dict(batch_size=2, augment=LOUD, seed=3, in_memory=True)
    plain = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), **kwargs)
    dropped = PatchDataset(tmp_path / "cache", ids, (16, 16, 16), **kwargs,
                           dropout=ModalityDropout.from_config(MODALITIES, 1.0, None))
    seen = set()
    for i in range(12):
        a, b = plain[i], dropped[i]
        present = b["present"].numpy()
        seen.add(tuple(present))
        assert present.any() and (b["image"][~b["present"]] == MISSING_VALUE).all()
        # the kept channels and the target are exactly those of the run without dropout
        torch.testing.assert_close(b["image"][b["present"]], a["image"][b["present"]], rtol=0, atol=0)
        torch.testing.assert_close(b["label"], a["label"], rtol=0, atol=0)
        assert a["image"].abs().sum(dim=(1, 2, 3)).min() > 0  # augmentation moved every channel off 0
    assert len(seen) > 4


def test_on_device_path_drops_after_its_augmentation():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(4, 4, 12, 12, 12, generator=g)
    regions = (torch.rand(4, 3, 12, 12, 12, generator=g) > 0.5).float()
    present = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    aug = DeviceAugmentation(dataclasses.replace(LOUD, p_blur=1.0, p_gamma=1.0))
    batch = {"image": image, "label": regions, "present": present}
    out = next(augment_batches([batch], aug, torch.device("cpu"), seed=0))
    assert (out["image"][~present] == MISSING_VALUE).all()
    assert (out["image"][present].abs().sum(dim=(1, 2, 3)) > 0).all()
    plain = next(augment_batches([{"image": image, "label": regions}], aug, torch.device("cpu"), seed=0))
    torch.testing.assert_close(out["image"][present], plain["image"][present], rtol=0, atol=0)


@pytest.mark.parametrize("change, message", [
    (["--modality-dropout", "1.5"], "must be in [0, 1]"),
    (["--subsets", "t1c+t2f"], "modality_dropout is 0"),
    (["--modality-dropout", "0.5", "--subsets", "t1c+pd"], "unknown modality 'pd'"),
    (["--modality-dropout", "0.5", "--subsets", "t2f", "flair"], "listed twice"),
])
def test_bad_dropout_settings_fail_in_one_line(tmp_path, capsys, change, message):
    write_toy_cache(tmp_path / "cache", n=2)
    assert main(["train", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *TINY, *change]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_checkpoint_records_the_trained_subsets(tmp_path):
    write_toy_cache(tmp_path / "cache", n=2)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "cache"), "--out", str(run), *TINY, "--modality-dropout", "0.5",
                 "--subsets", "t2f", "t1ce+flair"]) == 0
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run / "checkpoints" / name)
        assert ckpt["trained_subsets"] == [["t2f"], ["t1c", "t2f"], list(MODALITIES)]
        assert ckpt["required_channels"] == ["t2f"] == list(required_channels_of(ckpt))
        assert ckpt["provenance"]["config"]["modality_dropout"] == 0.5
    always = tmp_path / "always"  # every sample dropped: the complete set is never trained
    assert main(["train", str(tmp_path / "cache"), "--out", str(always), *TINY, "--modality-dropout", "1",
                 "--subsets", "t2f", "t1ce+flair"]) == 0
    ckpt = load_checkpoint(always / "checkpoints" / "best.pt")
    assert trained_subsets_of(ckpt) == [("t2f",), ("t1c", "t2f")] and required_channels_of(ckpt) == ("t2f",)
    plain = tmp_path / "plain"
    assert main(["train", str(tmp_path / "cache"), "--out", str(plain), *TINY]) == 0
    ckpt = load_checkpoint(plain / "checkpoints" / "best.pt")
    assert trained_subsets_of(ckpt) == [MODALITIES] and required_channels_of(ckpt) == MODALITIES
    # the trainer's batches really were dropped: same seed, same patches, another loss
    loss = [load_checkpoint(r / "checkpoints" / "last.pt")["training"]["history"][0]["train_loss"]
            for r in (always, plain)]
    assert loss[0] != loss[1]
