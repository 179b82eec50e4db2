"""Write a MONAI bundle in the ``brats_mri_segmentation`` form (its configs/inference.json and metadata.json
layout, a SegResNet of ``init_filters``), weights a random init with the output layer x8; and run MONAI's
own pipeline built from the bundle's config (the reference)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

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


def write_bundle(parent: Path, init_filters: int = 8, roi=(64, 64, 48), dropout: float | None = 0.2) -> Path:
    from monai.bundle import ConfigParser

    config = json.loads(json.dumps(INFERENCE))
    config["network_def"]["init_filters"] = init_filters
    config["network_def"]["dropout_prob"] = dropout
    config["inferer"]["roi_size"] = list(roi)
    root = parent / "brats_mri_segmentation"
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "metadata.json").write_text(json.dumps(METADATA))
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=4))
    torch.manual_seed(0)
    net = ConfigParser(config).get_parsed_content("network_def")
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
