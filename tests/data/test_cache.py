"""The preprocessing cache (brats_seg.data.preprocessing.cache): one reader, strict about what a cache must say.

A cache missing its preprocessing config, its channel names or a case's label scheme, or naming an
unknown channel, is refused by ``brats-seg train`` with one line naming the file and the key and
telling to re-run ``brats-seg preprocess`` (before, defaults stood in and the checkpoint recorded a
preprocessing the data never had)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.data.preprocessing.cache import (
    cached_case_ids,
    cached_config,
    is_cache,
    load_cached,
    read_index,
)
from brats_seg.errors import CaseError
from helpers import write_dataset

TINY = ["--model", "unet3d", "--preset", "tiny", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "1",
        "--workers", "0", "--threads", "1", "--no-progress", "--epochs", "1", "--folds", "1"]


@pytest.fixture
def cache(tmp_path):
    """A cache made by ``brats-seg preprocess`` from two tiny brats2021 cases."""
    data, out = write_dataset(tmp_path / "data", "brats2021", n_cases=2), tmp_path / "cache"
    assert main(["preprocess", str(data), str(out), "--quiet", "--workers", "1"]) == 0
    return out


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_reader_lists_recognises_and_reads(cache, tmp_path):
    assert is_cache(cache) and not is_cache(tmp_path / "data")
    assert cached_case_ids(cache) == cached_case_ids(cache, labelled=True) == ["BraTS2021_00001", "BraTS2021_00002"]
    index = read_index(cache)
    assert index["channels"] == ["t1n", "t1c", "t2w", "t2f"] and cached_config(cache).normalization == "zscore"
    case = load_cached(cache, "BraTS2021_00001")
    assert case.case_id == "BraTS2021_00001" and case.label_scheme == "brats2021"
    assert isinstance(case.image, np.memmap) and case.image.shape[1:] == case.label.shape
    assert case.regions().shape == (3, *case.label.shape)
    with pytest.raises(CaseError, match="not a preprocessing cache"):
        read_index(tmp_path / "data")


def _drop(key):
    return lambda d: d.pop(key)


@pytest.mark.parametrize("target, change, message", [
    ("dataset.json", _drop("config"), "no 'config' entry (the preprocessing config)"),
    ("dataset.json", lambda d: d["config"].pop("normalization"), "the preprocessing 'config' lacks normalization"),
    ("dataset.json", _drop("channels"), "no 'channels' entry (the input channel names)"),
    ("dataset.json", lambda d: d.update(channels=["t1n", "t1c", "t2w", "dwi"]),
     "channel name 'dwi' is not a known modality (accepted: "),
    ("BraTS2021_00001.json", _drop("label_scheme"), "no 'label_scheme' entry for the labelled case"),
])
def test_train_refuses_an_incomplete_cache(cache, tmp_path, capsys, target, change, message):
    _edit(cache / target, change)
    assert main(["train", str(cache), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(cache / target) in err[0] and message in err[0], err
    assert "brats-seg preprocess" in err[0] or "accepted: " in err[0]
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_an_unlabelled_case_needs_no_scheme(cache):
    (cache / "BraTS2021_00002_label.npy").unlink()
    _edit(cache / "BraTS2021_00002.json", lambda d: d.update(label_scheme=None, has_label=False))
    assert cached_case_ids(cache, labelled=True) == ["BraTS2021_00001"]
    assert load_cached(cache, "BraTS2021_00002").label is None
