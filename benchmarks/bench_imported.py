"""Models trained elsewhere run by their own code and by ours: seconds, agreement, memory.

nnU-Net (default):

One nnU-Net v2 folder (``--folder``; default: one written like the importer tests write theirs, a
PlainConvUNet of ``--features`` with ``--patch`` windows and random weights, output layer scaled), one
real case, ``--threads`` CPU threads, mirroring off and on. Each recipe runs in a fresh process (so
its peak resident memory is its own): nnU-Net's ``nnUNetPredictor.predict_single_npy_array`` (the
image read by its SimpleITKIO) and ours (``Predictor.predict`` on the case loaded by brats_seg) with
each ``--backends`` entry. Printed per row: seconds, speed-up over nnU-Net, Dice per region (WT, TC,
ET of the msd scheme) between our label map and nnU-Net's, and peak resident memory (MiB).

    flock /tmp/brats_cpu.lock .venv/bin/python benchmarks/bench_imported.py --threads 2

MONAI bundle (``--bundle``): a bundle in the ``brats_mri_segmentation`` form (SegResNet 16 filters, roi
240 x 240 x 160, random weights; or ``--folder BUNDLE``), MONAI's own pipeline built from the bundle's
config (preprocessing, SlidingWindowInferer, postprocessing) against ours; same columns (brats2021 regions).

    flock /tmp/brats_cpu.lock .venv/bin/python benchmarks/bench_imported.py --bundle --runs off
    .venv/bin/python benchmarks/bench_imported.py --folder results/Dataset137/nnUNetTrainer__nnUNetPlans__3d_fullres
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CASE = SHARED / "brats2021" / "BraTS2021_00002"
SUFFIXES = ("t1", "t1ce", "t2", "flair")  # nnU-Net's channel order of Dataset137 (T1, T1ce, T2, Flair)


def run_nnunet(folder: Path, mirroring: bool) -> np.ndarray:
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), use_folds=None, checkpoint_name="checkpoint_final.pth")
    files = [str(CASE / f"{CASE.name}_{s}.nii.gz") for s in SUFFIXES]
    data, props = SimpleITKIO().read_images(files)
    return np.asarray(predictor.predict_single_npy_array(data, props, None, None, False)).transpose(2, 1, 0)


def run_ours(folder: Path, mirroring: bool, backend: str) -> np.ndarray:
    from brats_seg.data.cases import load_case
    from brats_seg.data.layouts import discover_cases
    from brats_seg.inference.predictor import Predictor

    predictor = Predictor([folder], device="cpu", tta=8 if mirroring else 0, backend=backend.split(":")[0],
                          precision=(backend.split(":") + ["fp32"])[1], batch_size=2)
    (case,) = discover_cases(CASE)
    return predictor.predict(load_case(case), label_scheme="msd").labels


def run_bundle_reference(folder: Path) -> np.ndarray:
    from bundle_folder import monai_labels

    return monai_labels(folder, CASE)


def run_bundle_ours(folder: Path, backend: str) -> np.ndarray:
    from brats_seg.data.cases import load_case
    from brats_seg.data.layouts import discover_cases
    from brats_seg.inference.predictor import Predictor

    predictor = Predictor([folder], device="cpu", backend=backend.split(":")[0],
                          precision=(backend.split(":") + ["fp32"])[1], batch_size=1)
    (case,) = discover_cases(CASE)
    return predictor.predict(load_case(case), label_scheme="brats2021").labels


def child(args) -> None:
    """One recipe in this process: writes labels (.npy) and prints {"seconds", "peak_mib"} as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT / "tests" / "importers"))
    if args.bundle:
        labels = run_bundle_reference(args.folder) if args.recipe == "reference" else \
            run_bundle_ours(args.folder, args.recipe)
    else:
        labels = run_nnunet(args.folder, args.mirroring) if args.recipe == "reference" else \
            run_ours(args.folder, args.mirroring, args.recipe)
    seconds = time.perf_counter() - t0
    np.save(args.labels, labels.astype(np.uint8))
    print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 if not a.any() and not b.any() else float(2 * (a & b).sum() / (a.sum() + b.sum()))


def agreement(ours: np.ndarray, theirs: np.ndarray, bundle: bool) -> str:
    regions = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)} if bundle else {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}
    return " ".join(f"{r} {dice(np.isin(ours, v), np.isin(theirs, v)):.4f}" for r, v in regions.items())


def spawn(args, recipe: str, mirroring: bool, labels: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", recipe, "--folder", str(args.folder), "--threads", str(args.threads),
           "--labels", str(labels)] + (["--mirroring"] if mirroring else [])
    cmd += ["--bundle"] if args.bundle else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT),
                                                                                "OMP_NUM_THREADS": str(args.threads)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="nnU-Net v2 trained model folder (default: write one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino"], help="ours: torch onnx openvino"
                        " (backend:bf16 for bf16)")
    parser.add_argument("--features", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--patch", type=int, nargs=3, default=[64, 64, 64])
    parser.add_argument("--bundle", action="store_true", help="a MONAI bundle against MONAI's pipeline")
    parser.add_argument("--runs", nargs="+", choices=("off", "on"), default=["off", "on"], help="mirroring states")
    parser.add_argument("--child", dest="recipe", help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mirroring", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recipe:
        return child(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench_imported_"))
    sys.path.insert(0, str(ROOT / "tests" / "importers"))
    if args.folder is None and args.bundle:
        from bundle_folder import write_bundle

        args.folder = write_bundle(tmp, init_filters=16, roi=(240, 240, 160))
        print(f"bundle: brats_mri_segmentation form, SegResNet 16 filters, roi 240x240x160 ({args.folder})")
    elif args.folder is None:
        from nnunet_folder import PLAIN, write_trained_folder

        args.folder = write_trained_folder(tmp, network=PLAIN, patch=tuple(args.patch), features=tuple(args.features))
        print(f"folder: PlainConvUNet {args.features}, patch {args.patch}, random weights (written to {args.folder})")
    print(f"case {CASE.name}, {args.threads} threads")
    reference = "MONAI" if args.bundle else "nnU-Net"
    for mirroring in [state == "on" for state in (["off"] if args.bundle else args.runs)]:
        ref = spawn(args, "reference", mirroring, tmp / "reference.npy")
        theirs = np.load(tmp / "reference.npy")
        state = "on " if mirroring else "off"
        print(f"mirroring {state} {reference} {ref['seconds']:7.1f} s  peak {ref['peak_mib']:6.0f} MiB")
        for backend in args.backends:
            r = spawn(args, backend, mirroring, tmp / "ours.npy")
            agree = agreement(np.load(tmp / "ours.npy"), theirs, args.bundle)
            print(f"             ours {backend:<13} {r['seconds']:7.1f} s  {ref['seconds'] / r['seconds']:5.2f}x"
                  f"  peak {r['peak_mib']:6.0f} MiB  agreement {agree}")


if __name__ == "__main__":
    main()
