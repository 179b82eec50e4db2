"""Write nnU-Net v2 trained model folders and real-case crops for the importer tests.

plans.json and dataset.json are written with the keys and values nnU-Net v2 writes (a small patch and
network so the CPU tests stay fast); checkpoint_final.pth holds the same entries nnU-Net's trainer saves
(``nnUNetTrainer.save_checkpoint``), numpy scalars in its log included. The weights are a random init
whose output layer is scaled up, so the logits are far from the decision threshold in most voxels.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

BRATS_SEQUENCES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "Flair"}
"""BraTS 2021 file suffix -> the channel name nnU-Net's Dataset137_BraTS2021 conversion writes."""
CHANNELS = tuple(BRATS_SEQUENCES.values())
REGIONS_LABELS = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
SOFTMAX_LABELS = {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumor": 3}

PLAIN = ("dynamic_network_architectures.architectures.unet.PlainConvUNet",
         {"n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [1, 1]})
RESENC = ("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
          {"n_blocks_per_stage": [1, 2, 2], "n_conv_per_stage_decoder": [1, 1]})


def plans(network=PLAIN, patch=(24, 32, 40), spacing=(1.0, 1.0, 1.0), use_mask=True, features=(4, 8, 16),
          n_channels: int = 4) -> dict:
    cls, blocks = network
    n = len(features)
    blocks = {k: (v + [v[-1]] * n)[:n if k != "n_conv_per_stage_decoder" else n - 1] for k, v in blocks.items()}
    arch = {"n_stages": n, "features_per_stage": list(features), "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n, "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1), **blocks,
            "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor", "batch_size": 2,
        "patch_size": list(patch), "median_image_size_in_voxels": [140.0, 170.0, 136.0], "spacing": list(spacing),
        "normalization_schemes": ["ZScoreNormalization"] * n_channels, "use_mask_for_norm": [use_mask] * n_channels,
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": resampling, "resampling_fn_seg_kwargs": {**resampling, "is_seg": True, "order": 1},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {**resampling, "order": 1},
        "architecture": {"network_class_name": cls, "arch_kwargs": arch,
                         "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
        "batch_dice": False}
    intensity = {"max": 1000.0, "mean": 300.0, "median": 280.0, "min": 0.0, "percentile_00_5": 10.0,
                 "percentile_99_5": 900.0, "std": 150.0}
    return {"dataset_name": "Dataset137_BraTS2021", "plans_name": "nnUNetPlans",
            "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
            "original_median_shape_after_transp": [140, 170, 136], "image_reader_writer": "SimpleITKIO",
            "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
            "configurations": {"3d_fullres": config}, "experiment_planner_used": "ExperimentPlanner",
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": {str(c): intensity for c in range(n_channels)}}


def dataset_json(regions: bool = True, channels=CHANNELS) -> dict:
    out = {"channel_names": {str(k): v for k, v in enumerate(channels)},
           "labels": REGIONS_LABELS if regions else SOFTMAX_LABELS, "numTraining": 2, "file_ending": ".nii.gz"}
    if regions:
        out["regions_class_order"] = [1, 2, 3]
    return out


def write_trained_folder(root: Path, *, network=PLAIN, regions: bool = True, folds=(0,), seed: int = 0,
                         use_mask: bool = True, patch=(24, 32, 40), features=(4, 8, 16),
                         channels=CHANNELS, spacing=(1.0, 1.0, 1.0)) -> Path:
    """``root/nnUNetTrainer__nnUNetPlans__3d_fullres`` with dataset.json, plans.json, fold_k/checkpoint_final.pth
    (``channels``: dataset.json's channel names, in order: e.g. a GlioMODA-style model of two sequences)."""
    from dynamic_network_architectures.architectures import unet

    folder = root / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    folder.mkdir(parents=True)
    p = plans(network, patch=patch, spacing=spacing, use_mask=use_mask, features=features, n_channels=len(channels))
    d = dataset_json(regions, channels)
    (folder / "plans.json").write_text(json.dumps(p, indent=4))
    (folder / "dataset.json").write_text(json.dumps(d, indent=4))
    arch = p["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    ops = {"conv_op": torch.nn.Conv3d, "norm_op": torch.nn.InstanceNorm3d, "nonlin": torch.nn.LeakyReLU,
           "dropout_op": None}
    for k, fold in enumerate(folds):
        torch.manual_seed(seed + k)
        net = getattr(unet, network[0].rsplit(".", 1)[1])(input_channels=len(channels), num_classes=3 if regions else 4,
                                                         deep_supervision=False, **{**arch, **ops})
        with torch.no_grad():  # spread the logits: most voxels far from the threshold
            for name, param in net.named_parameters():
                if name.startswith("decoder.seg_layers"):
                    param.mul_(8.0)
        (folder / f"fold_{fold}").mkdir()
        logging = {"mean_fg_dice": [np.float64(0.5)], "ema_fg_dice": [np.float64(0.5)],
                   "dice_per_class_or_region": [[np.float64(0.4)] * 3], "train_losses": [np.float64(-0.3)],
                   "val_losses": [np.float32(-0.2)], "lrs": [0.01], "epoch_start_timestamps": [1.0],
                   "epoch_end_timestamps": [2.0]}
        torch.save({"network_weights": net.state_dict(), "optimizer_state": {"state": {}, "param_groups": []},
                    "grad_scaler_state": None, "logging": logging, "_best_ema": np.float64(0.5), "current_epoch": 1,
                    "init_args": {"plans": p, "configuration": "3d_fullres", "fold": fold, "dataset_json": d,
                                  "device": torch.device("cpu")},
                    "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1, 2)},
                   folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder


def write_crop(shared: Path, case_id: str, box, out: Path) -> tuple[Path, list[Path]]:
    """A BraTS 2021-layout case folder cropped to ``box`` (our voxel axes) under ``out``, and its files in
    nnU-Net's channel order (T1, T1ce, T2, Flair)."""
    folder = out / case_id
    folder.mkdir(parents=True)
    files = []
    for suffix in BRATS_SEQUENCES:
        img = nib.load(shared / "brats2021" / case_id / f"{case_id}_{suffix}.nii.gz")
        crop = img.slicer[tuple(slice(lo, hi) for lo, hi in box)]
        data = np.asarray(crop.dataobj, dtype=np.float32)
        path = folder / f"{case_id}_{suffix}.nii.gz"
        nib.save(nib.Nifti1Image(data, crop.affine), path)
        files.append(path)
    return folder, files
