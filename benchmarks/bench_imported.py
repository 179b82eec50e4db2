"""Models trained elsewhere run by their own code and by ours: seconds, agreement, memory.

nnU-Net (default):

One nnU-Net v2 folder (``--folder``; default: one written like the importer tests write theirs, a
PlainConvUNet of ``--features`` with ``--patch`` windows and random weights, output layer scaled), one
real case (``--crop LO HI`` x 3 takes a box of it), ``--threads`` CPU threads, mirroring off and on.

Seconds: per mirroring state one process sets up nnU-Net's ``nnUNetPredictor`` and our ``Predictor``
for each ``--backends`` entry (model loading, ONNX export and OpenVINO's compilation, ``warm_up``: not
timed), then runs them interleaved ``--repeats`` times on the case (each run timed from reading the
files to the label map: nnU-Net's SimpleITKIO + ``predict_single_npy_array``, ours ``load_case`` +
``Predictor.predict``); the median is printed, with the speed-up over nnU-Net's median and the Dice per
region (WT, TC, ET of the msd scheme) between our label map and nnU-Net's. Peak memory: each recipe
once more in a fresh process of its own (its peak resident MiB, set-up included); ``--no-memory`` skips it.

    nice -n 10 .venv/bin/python benchmarks/bench_imported.py --threads 2

MONAI bundle (``--bundle``): a bundle in the ``brats_mri_segmentation`` form (SegResNet 16 filters, roi
240 x 240 x 160, random weights; or ``--folder BUNDLE``), MONAI's own pipeline built from the bundle's
config (preprocessing, SlidingWindowInferer, postprocessing) against ours, one run each in a fresh process;
same columns (brats2021 regions).

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


def nnunet_predictor(folder: Path, mirroring: bool):
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), use_folds=None, checkpoint_name="checkpoint_final.pth")
    return predictor


def nnunet_case(predictor, case: Path) -> np.ndarray:
    """nnU-Net's label map of ``case`` in our (nibabel) axis order; its reader included."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    threads = torch.get_num_threads()
    data, props = SimpleITKIO().read_images([str(case / f"{case.name}_{s}.nii.gz") for s in SUFFIXES])
    labels = np.asarray(predictor.predict_single_npy_array(data, props, None, None, False)).transpose(2, 1, 0)
    torch.set_num_threads(threads)  # nnU-Net's predictor changes it
    return labels


def our_predictor(folder: Path, mirroring: bool, backend: str):
    from brats_seg.inference.predictor import Predictor

    predictor = Predictor([folder], device="cpu", tta=8 if mirroring else 0, backend=backend.split(":")[0],
                          precision=(backend.split(":") + ["fp32"])[1], batch_size=2, warn=False)
    predictor.warm_up()  # OpenVINO compiles per batch shape: set-up, not per case
    return predictor


def our_case(predictor, case: Path) -> np.ndarray:
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case

    (found,) = discover_cases(case)
    return predictor.predict(load_case(found), label_scheme="msd").labels


def timing(args) -> None:
    """Set every recipe up, then run them interleaved ``--repeats`` times; print {recipe: [seconds]} as JSON
    and save each recipe's labels to ``--labels``/<recipe>.npy."""
    recipes = {"reference": (nnunet_predictor(args.folder, args.mirroring), nnunet_case)}
    recipes.update({b: (our_predictor(args.folder, args.mirroring, b), our_case) for b in args.backends})
    seconds: dict[str, list[float]] = {r: [] for r in recipes}
    for _ in range(args.repeats):
        for recipe, (predictor, run) in recipes.items():
            t0 = time.perf_counter()
            labels = run(predictor, args.case)
            seconds[recipe].append(time.perf_counter() - t0)
            np.save(args.labels / f"{recipe}.npy", labels.astype(np.uint8))
    print(json.dumps(seconds))


def run_bundle_reference(folder: Path, case: Path) -> np.ndarray:
    from bundle_folder import monai_labels

    return monai_labels(folder, case)


def run_bundle_ours(folder: Path, backend: str, case: Path) -> np.ndarray:
    from brats_seg.data.reading.layouts import discover_cases
    from brats_seg.data.reading.volumes import load_case
    from brats_seg.inference.predictor import Predictor

    predictor = Predictor([folder], device="cpu", backend=backend.split(":")[0],
                          precision=(backend.split(":") + ["fp32"])[1], batch_size=1)
    (found,) = discover_cases(case)
    return predictor.predict(load_case(found), label_scheme="brats2021").labels


def child(args) -> None:
    """One recipe in this process (set-up and one case): writes labels (.npy) and prints {"seconds",
    "peak_mib"} as JSON; or, for ``--child timing``, :func:`timing`."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "tests" / "importers"))
    if args.recipe == "timing":
        return timing(args)
    t0 = time.perf_counter()
    if args.bundle:
        labels = run_bundle_reference(args.folder, args.case) if args.recipe == "reference" else \
            run_bundle_ours(args.folder, args.recipe, args.case)
    elif args.recipe == "reference":
        labels = nnunet_case(nnunet_predictor(args.folder, args.mirroring), args.case)
    else:
        labels = our_case(our_predictor(args.folder, args.mirroring, args.recipe), args.case)
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
           "--labels", str(labels), "--case", str(args.case), "--repeats", str(args.repeats), "--backends",
           *args.backends] + (["--mirroring"] if mirroring else [])
    cmd += ["--bundle"] if args.bundle else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT),
                                                                                "OMP_NUM_THREADS": str(args.threads)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="nnU-Net v2 trained model folder (default: write one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino"], help="ours: torch onnx openvino"
                        " (backend:bf16 for bf16)")
    parser.add_argument("--features", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--patch", type=int, nargs=3, default=[64, 64, 64])
    parser.add_argument("--crop", type=int, nargs=6, metavar=("LO0", "HI0", "LO1", "HI1", "LO2", "HI2"),
                        help="a box of the case (our voxel axes), to keep the run short")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per recipe (median)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    parser.add_argument("--bundle", action="store_true", help="a MONAI bundle against MONAI's pipeline")
    parser.add_argument("--runs", nargs="+", choices=("off", "on"), default=["off", "on"], help="mirroring states")
    parser.add_argument("--child", dest="recipe", help=argparse.SUPPRESS)
    parser.add_argument("--case", type=Path, default=CASE, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mirroring", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def prepare(args, tmp: Path) -> None:
    """The model folder (written unless given) and the case (cropped when asked) into ``args``."""
    sys.path.insert(0, str(ROOT / "tests" / "importers"))
    if args.folder is None and args.bundle:
        from bundle_folder import write_bundle

        args.folder = write_bundle(tmp, init_filters=16, roi=(240, 240, 160))
        print(f"bundle: brats_mri_segmentation form, SegResNet 16 filters, roi 240x240x160 ({args.folder})")
    elif args.folder is None:
        from nnunet_folder import PLAIN, write_trained_folder

        args.folder = write_trained_folder(tmp, network=PLAIN, patch=tuple(args.patch), features=tuple(args.features))
        print(f"folder: PlainConvUNet {args.features}, patch {args.patch}, random weights (written to {args.folder})")
    if args.crop:
        from nnunet_folder import write_crop

        box = [args.crop[k:k + 2] for k in (0, 2, 4)]
        args.case, _ = write_crop(SHARED, CASE.name, box, tmp / "crop")
    print(f"case {CASE.name}{f' crop {box}' if args.crop else ''}, {args.threads} threads")


def nnunet_rows(args, tmp: Path, mirroring: bool) -> None:
    """Median seconds (interleaved, one process), ratio, agreement; then peak memory per recipe."""
    (tmp / "labels").mkdir(exist_ok=True)
    seconds = spawn(args, "timing", mirroring, tmp / "labels")
    ref = float(np.median(seconds.pop("reference")))
    theirs = np.load(tmp / "labels" / "reference.npy")
    print(f"mirroring {'on ' if mirroring else 'off'} nnU-Net {ref:7.1f} s (median of {args.repeats})")
    for backend, runs in seconds.items():
        ours = float(np.median(runs))
        agree = agreement(np.load(tmp / "labels" / f"{backend}.npy"), theirs, False)
        print(f"             ours {backend:<13} {ours:7.1f} s  {ref / ours:5.2f}x  agreement {agree}")
    if args.memory:
        peaks = {r: spawn(args, r, mirroring, tmp / "memory.npy")["peak_mib"] for r in ["reference", *args.backends]}
        print("             peak MiB (own process each): " + "  ".join(f"{r} {m:.0f}" for r, m in peaks.items()))


def main() -> None:
    args = parse_args()
    if args.recipe:
        return child(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench_imported_"))
    prepare(args, tmp)
    if not args.bundle:
        for state in args.runs:
            nnunet_rows(args, tmp, state == "on")
        return
    ref = spawn(args, "reference", False, tmp / "reference.npy")
    theirs = np.load(tmp / "reference.npy")
    print(f"MONAI {ref['seconds']:7.1f} s  peak {ref['peak_mib']:6.0f} MiB")
    for backend in args.backends:
        r = spawn(args, backend, False, tmp / "ours.npy")
        agree = agreement(np.load(tmp / "ours.npy"), theirs, True)
        print(f"             ours {backend:<13} {r['seconds']:7.1f} s  {ref['seconds'] / r['seconds']:5.2f}x"
              f"  peak {r['peak_mib']:6.0f} MiB  agreement {agree}")


if __name__ == "__main__":
    main()
