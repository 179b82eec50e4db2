#!/usr/bin/env python
"""Rewrite a dataset in another layout and label scheme.

    python data_scripts/convert_layout.py data/brats2021 data/brats2021_as_2023 --to brats2023

Targets: ``brats2021`` (``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``, labels 1,2,4),
``brats2023`` (``<case>/<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz``, labels 1,2,3),
``nnunet`` (``imagesTr/<case>_000{0..3}.nii.gz``, ``labelsTr/<case>.nii.gz`` and a
``dataset.json`` with BraTS regions, labels 1,2,3). Geometry (affine, header) is
kept; label maps are written as uint8; writes are atomic and existing files are
never overwritten. A bad case is reported and the others are converted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from brats_seg.conventions import MODALITIES, convert_labels, detect_scheme
from brats_seg.data.reading.cases import Case
from brats_seg.data.reading.image_io import read_image, write_image, write_label
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.errors import BratsSegError

LEGACY_NAMES = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
TARGETS = {
    # target -> (label scheme, image path, label path) relative to the output root
    "brats2021": ("brats2021", lambda c, m: f"{c}/{c}_{LEGACY_NAMES[m]}.nii.gz", lambda c: f"{c}/{c}_seg.nii.gz"),
    "brats2023": ("brats2023", lambda c, m: f"{c}/{c}-{m}.nii.gz", lambda c: f"{c}/{c}-seg.nii.gz"),
    "nnunet": ("brats2023", lambda c, m: f"imagesTr/{c}_{MODALITIES.index(m):04d}.nii.gz",
               lambda c: f"labelsTr/{c}.nii.gz"),
}


def convert_case(case: Case, out: Path, target: str) -> None:
    scheme, image_path, label_path = TARGETS[target]
    outputs = [out / image_path(case.case_id, m) for m in MODALITIES]
    if case.label is not None:
        outputs.append(out / label_path(case.case_id))
    existing = [str(p) for p in outputs if p.exists()]
    if existing:
        raise BratsSegError(f"case {case.case_id}: {existing[0]} exists; not overwriting")
    for m in MODALITIES:
        if m not in case.images:
            raise BratsSegError(f"case {case.case_id}: missing modality {m}")
    converted = None
    if case.label is not None:  # converted first: a label map that cannot be converted leaves no files behind
        lab = read_image(case.label, dtype=None)
        labels = np.rint(np.asarray(lab.array)).astype(np.uint8)
        try:
            source = detect_scheme(np.unique(labels), hint=case.label_scheme, case_id=case.case_id)
            converted = convert_labels(labels, source, scheme)
        except BratsSegError as e:
            raise BratsSegError(f"case {case.case_id}: {case.label.name}: {e}") from None
    for m, dest in zip(MODALITIES, outputs):
        img = read_image(case.images[m], dtype=None)
        array = img.array[..., case.channel_index[m]] if m in case.channel_index else img.array
        write_image(dest, np.asarray(array), img)
    if converted is not None:
        write_label(outputs[-1], converted, lab)


def write_nnunet_json(out: Path, n_cases: int) -> None:
    meta = {
        "channel_names": {str(i): m for i, m in enumerate(MODALITIES)},
        "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [1, 3], "enhancing tumor": 3},
        "regions_class_order": [2, 1, 3],
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="dataset folder in any supported layout")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--to", choices=sorted(TARGETS), required=True, help="target layout")
    parser.add_argument("--layout", help="force the input layout")
    args = parser.parse_args(argv)
    try:
        cases = discover_cases(args.data, layout=args.layout)
    except BratsSegError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failures = []
    for case in cases:
        try:
            convert_case(case, args.out, args.to)
        except BratsSegError as e:
            failures.append(str(e))
            print(f"error: {e}", file=sys.stderr)
    if args.to == "nnunet":
        write_nnunet_json(args.out, len(cases) - len(failures))
    print(f"converted {len(cases) - len(failures)} of {len(cases)} cases into {args.out} ({args.to})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
