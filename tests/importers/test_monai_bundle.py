"""A MONAI bundle in the ``brats_mri_segmentation`` form (configs/metadata.json, configs/inference.json,
models/model.pt), written here with a small SegResNet and spread-out weights: our labels equal those of
MONAI's own pipeline built from the bundle's config (its preprocessing, inferer, sigmoid, threshold and
write-back 4 > 1 > 2), on crops of two real cases; and the refusals, through the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from brats_seg.cli import main
from brats_seg.data.cases import load_case
from brats_seg.data.layouts import discover_cases
from brats_seg.inference.predictor import Predictor

pytestmark = pytest.mark.realdata

METADATA = {"version": "0.5.3", "name": "brats_mri_segmentation", "network_data_format": {
    "inputs": {"image": {"type": "image", "num_channels": 4,
                         "channel_def": {"0": "T1c", "1": "T1", "2": "T2", "3": "FLAIR"}}},
    "outputs": {"pred": {"type": "image", "num_channels": 3,
                         "channel_def": {"0": "Tumor core", "1": "Whole tumor", "2": "Enhancing tumor"}}}}}
INFERENCE = {
    "imports": ["$import glob", "$import os"], "bundle_root": ".", "device": "$torch.device('cpu')",
    "network_def": {"_target_": "SegResNet", "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 8,
                    "in_channels": 4, "out_channels": 3, "dropout_prob": 0.2},
    "network": "$@network_def.to(@device)",
    "preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "LoadImaged", "keys": "image"},
        {"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True, "channel_wise": True}]},
    "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [64, 64, 48], "sw_batch_size": 1, "overlap": 0.5},
    "postprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
        {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5},
        {"_target_": "Lambdad", "keys": "pred", "func": "$lambda x: torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0,"
                                                          " 1, torch.where(x[[1]] > 0, 2, 0)))"}]},
}
ORDER = ("t1ce", "t1", "t2", "flair")  # the bundle's channel order, as BraTS 2021 file suffixes


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from monai.bundle import ConfigParser

    root = tmp_path_factory.mktemp("bundle") / "brats_mri_segmentation"
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "metadata.json").write_text(json.dumps(METADATA))
    (root / "configs" / "inference.json").write_text(json.dumps(INFERENCE, indent=4))
    torch.manual_seed(0)
    net = ConfigParser(INFERENCE).get_parsed_content("network_def")
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "conv_final" in name:
                p.mul_(8.0)
    torch.save(net.state_dict(), root / "models" / "model.pt")
    return root


def monai_labels(bundle, case_dir) -> np.ndarray:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser["bundle_root"] = str(bundle)
    files = [str(next(case_dir.glob(f"*_{s}.nii.gz"))) for s in ORDER]
    image = parser.get_parsed_content("preprocessing")({"image": files})["image"]
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    with torch.no_grad():
        pred = parser.get_parsed_content("inferer")(image[None], net.eval())[0]
    return parser.get_parsed_content("postprocessing")({"pred": pred})["pred"][0].numpy()


def test_labels_equal_monai_pipeline(bundle, crops):
    predictor = Predictor([bundle], device="cpu")
    for case_id, (case_dir, _) in crops.items():
        (case,) = [c for c in discover_cases(case_dir.parent) if c.case_id == case_id]
        ours = predictor.predict(load_case(case), label_scheme="brats2021").labels
        theirs = monai_labels(bundle, case_dir)
        assert len(np.unique(theirs)) >= 3
        for region, values in {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}.items():
            a, b = np.isin(ours, values), np.isin(theirs, values)
            assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.999, (case_id, region, int((a != b).sum()))


def test_import_and_refusals(bundle, tmp_path, capsys):
    assert main(["models", "import", str(bundle), "--out", str(tmp_path / "m.pt")]) == 0
    bad = tmp_path / "bad" / bundle.name
    shutil.copytree(bundle, bad)
    config = dict(INFERENCE, network_def={**INFERENCE["network_def"], "_target_": "NoSuchNet"})
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    capsys.readouterr()
    for argv, words in [
        (["models", "import", str(bad), "--out", str(tmp_path / "x.pt")], ("network_def does not build",)),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    config = dict(INFERENCE, network_def={**INFERENCE["network_def"], "init_filters": "$__import__('os')"})
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    assert main(["models", "import", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "only plain values" in capsys.readouterr().err
    (bad / "configs" / "inference.json").write_text(json.dumps(INFERENCE))
    (bad / "models" / "model.pt").unlink()
    assert main(["models", "import", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "model.pt: missing" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
