"""Helpers for tests: tiny NIfTI volumes with affines, written into tmp folders."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def tiny_affine(spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = (-10.0, -12.0, 5.0)
    return aff


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), tiny_affine() if affine is None else affine), str(path))
    return path


def tiny_volumes(shape=(24, 24, 20), seed=0):
    """Four modality volumes (dict name -> float32 array) and a brats2021 label map.

    A brain-like ellipsoid of nonzero intensities with a tumor: edema (2) around a
    core (1) with an enhancing shell (4)."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    c = [(s - 1) / 2 for s in shape]
    r = sum(((idx[i] - c[i]) / (shape[i] * 0.45)) ** 2 for i in range(3))
    brain = r <= 1.0
    t = sum(((idx[i] - c[i] - 2) / 4.0) ** 2 for i in range(3))
    label = np.zeros(shape, np.uint8)
    label[(t <= 2.2) & brain] = 2
    label[t <= 1.0] = 4
    label[t <= 0.4] = 1
    vols = {}
    for k, name in enumerate(("t1", "t1ce", "t2", "flair")):
        v = (100 + 20 * k + 10 * rng.standard_normal(shape)).astype(np.float32)
        v += 40.0 * (label > 0) * (1 + k % 2)
        vols[name] = np.where(brain, v, 0).astype(np.float32)
    return vols, label


# --------------------------------------------------------------------------- tiny datasets in every layout

DATASET_LAYOUTS = ("brats2021", "brats2023", "msd", "nnunet", "csv")
MSD_DATASET_JSON = {
    "name": "BRATS", "tensorImageSize": "4D",
    "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
    "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
}
NNUNET_DATASET_JSON = {  # as nnU-Net v2's Dataset137_BraTS2021 writes it (region-based, msd values)
    "channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"},
    "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
    "regions_class_order": [1, 2, 3], "file_ending": ".nii.gz",
}


def dataset_case_ids(layout: str, n_cases: int = 1) -> list[str]:
    """The case ids :func:`write_dataset` uses for ``layout``."""
    fmt = {"brats2021": "BraTS2021_{:05d}", "brats2023": "BraTS-GLI-{:05d}-000", "msd": "BRATS_{:03d}",
           "nnunet": "BraTS2021_{:05d}", "csv": "case{:03d}"}[layout]
    return [fmt.format(i + 1) for i in range(n_cases)]


def write_dataset(root: Path, layout: str, n_cases: int = 1, *, labeled: bool = True,
                  shape=(16, 16, 16), seed: int = 0, defect: str | None = None) -> Path:
    """Write ``n_cases`` tiny cases (4 modalities + label in the layout's scheme) in ``layout``.

    Layouts: brats2021, brats2023, msd (4-D images, dataset.json), nnunet (v2 dataset.json,
    ``_0000`` channel files), csv (files plus ``cases.csv``). ``labeled=False`` writes no
    label maps (MSD/nnU-Net: into imagesTs). ``defect``: one of :data:`DEFECTS`, applied to
    the LAST case only (the others stay valid), so batch commands can be tested on a
    dataset with one bad case. Returns what to give ``discover_cases``: the dataset
    folder, or the CSV file for ``csv``.
    """
    if defect is not None:
        out = write_dataset(root, layout, n_cases, labeled=labeled, shape=shape, seed=seed)
        from brats_seg.data.reading.layouts import discover_cases

        break_case(discover_cases(out)[-1], defect)
        return out
    import json

    from brats_seg.conventions import MSD_CHANNEL_ORDER, canonical_modality, convert_labels

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    split = "Tr" if labeled else "Ts"
    rows = []
    for i, case_id in enumerate(dataset_case_ids(layout, n_cases)):
        vols, label = tiny_volumes(shape, seed=seed + i)
        by_mod = {canonical_modality(k): v for k, v in vols.items()}
        if layout in ("brats2021", "brats2023"):
            sep, names = ("_", vols) if layout == "brats2021" else ("-", by_mod)
            lab = label if layout == "brats2021" else convert_labels(label, "brats2021", "brats2023")
            for name, v in names.items():
                write_nifti(root / case_id / f"{case_id}{sep}{name}.nii.gz", v)
            if labeled:
                write_nifti(root / case_id / f"{case_id}{sep}seg.nii.gz", lab)
        elif layout == "msd":
            stacked = np.stack([by_mod[m] for m in MSD_CHANNEL_ORDER], axis=-1)
            write_nifti(root / f"images{split}" / f"{case_id}.nii.gz", stacked)
            if labeled:
                write_nifti(root / "labelsTr" / f"{case_id}.nii.gz", convert_labels(label, "brats2021", "msd"))
        elif layout == "nnunet":
            for ch, m in enumerate(("t1n", "t1c", "t2w", "t2f")):
                write_nifti(root / f"images{split}" / f"{case_id}_{ch:04d}.nii.gz", by_mod[m])
            if labeled:
                write_nifti(root / "labelsTr" / f"{case_id}.nii.gz", convert_labels(label, "brats2021", "msd"))
        elif layout == "csv":
            row = {"case_id": case_id}
            for m, v in by_mod.items():
                row[m] = f"files/{case_id}_{m}.nii.gz"
                write_nifti(root / row[m], v)
            if labeled:
                row["label"] = f"files/{case_id}_seg.nii.gz"
                write_nifti(root / row["label"], label)
            rows.append(row)
        else:
            raise ValueError(f"unknown layout {layout!r}")
    if layout == "msd":
        (root / "dataset.json").write_text(json.dumps(MSD_DATASET_JSON))
    if layout == "nnunet":
        (root / "dataset.json").write_text(json.dumps(NNUNET_DATASET_JSON))
    if layout == "csv":
        cols = list(rows[0])
        lines = [",".join(cols)] + [",".join(r.get(c, "") for c in cols) for r in rows]
        (root / "cases.csv").write_text("\n".join(lines) + "\n")
        return root / "cases.csv"
    return root


def _rewrite(path: Path, fn, affine=None) -> None:
    img = nib.load(str(path))
    write_nifti(path, fn(np.asanyarray(img.dataobj)), img.affine if affine is None else affine)


DEFECTS = {
    # name: (modality file or "label", how it is broken); check reports exactly one error for each
    "missing": ("t1c", lambda p: p.unlink()),
    "shape": ("t1c", lambda p: _rewrite(p, lambda a: a[:, :, :-1])),
    "affine": ("t2w", lambda p: _rewrite(p, lambda a: a, tiny_affine((1.0, 1.0, 1.5)))),
    "nan": ("t2w", lambda p: _rewrite(p, lambda a: np.where(a > 0, a, np.nan).astype(np.float32))),
    "zero": ("t2f", lambda p: _rewrite(p, np.zeros_like)),
    "4d": ("t1n", lambda p: _rewrite(p, lambda a: np.stack([a, a], -1))),
    "truncated": ("t1c", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    "label_shape": ("label", lambda p: _rewrite(p, lambda a: a[1:])),
    "label_values": ("label", lambda p: _rewrite(p, lambda a: np.where(a > 0, 7, 0).astype(np.uint8))),
    "float_label": ("label", lambda p: _rewrite(p, lambda a: (a * 0.5).astype(np.float32))),
}
"""Broken-case kinds for :func:`write_dataset` / :func:`break_case` (NIfTI files; MSD: the
4-D file, so "4d" does not apply there)."""


def break_case(case, defect: str) -> Path:
    """Break one file of a discovered ``Case`` in the way ``defect`` names; returns that file."""
    target, how = DEFECTS[defect]
    path = case.label if target == "label" else case.images[target]
    if path is None:
        raise ValueError(f"defect {defect!r} needs a labeled case")
    how(path)
    return path


# --------------------------------------------------------------------------- preprocessing caches

def write_cache_entries(out: Path, cases: dict, channels=("t1n", "t1c", "t2w", "t2f"),
                        spacings=None) -> list[str]:
    """A preprocessing cache written through :mod:`brats_seg.data.preprocessing.cache` (default config):
    ``cases`` maps case id -> ``(image (C, h, w, d), label (h, w, d) or None, label scheme)``;
    ``spacings``: one voxel spacing per case (default 1 mm)."""
    from brats_seg.config import PreprocessConfig, to_dict
    from brats_seg.data.preprocessing.cache import Preprocessed, write_cached, write_index
    from brats_seg.data.preprocessing.preprocess import PREPROCESS_VERSION

    spacings = list(spacings) if spacings is not None else [(1.0, 1.0, 1.0)] * len(cases)
    for (cid, (image, label, scheme)), spacing in zip(cases.items(), spacings):
        props = {"case_id": cid, "channels": list(channels), "label_scheme": scheme, "has_label": label is not None,
                 "spacing": [float(s) for s in spacing]}
        write_cached(out, Preprocessed(np.asarray(image, np.float32), label, props))
    write_index(out, to_dict(PreprocessConfig()), channels, list(cases), version=PREPROCESS_VERSION)
    return list(cases)


def torchvision_style_file(path):
    """A torchvision-format 2-D ResNet state dict shaped like resnet_unet tiny's encoder: 2-D kernels, an RGB
    stem, a classifier head."""
    import torch

    from brats_seg.models.registry import build_model

    sd2d = {}
    for k, v in build_model("resnet_unet", preset="tiny").state_dict().items():
        if k.startswith("encoder."):
            name = k[len("encoder."):]
            if v.ndim == 5:
                o, i, _, kh, kw = v.shape
                sd2d[name] = torch.randn(o, 3 if name == "conv1.weight" else i, kh, kw)
            else:
                sd2d[name] = torch.rand(v.shape) if v.is_floating_point() else v.clone()
    sd2d["fc.weight"], sd2d["fc.bias"] = torch.randn(10, 64), torch.randn(10)
    torch.save(sd2d, path)
    return sd2d
