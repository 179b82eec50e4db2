"""How far rigid co-registration lands from the known answer, over seeds and SimpleITK thread counts.

    .venv/bin/python benchmarks/bench_coregistration.py [--data ../shared/data]
        [--case Brats18_TCIA01_201_1] [--seeds 1,2,3,4,5] [--threads 1,2,16] [--untouched]

Per seed, a scanner-like copy of one shared BraTS 2018 case (``brats_seg.prepare.simulate``: known
rigid motion per sequence up to 15 degrees / 20 mm, T2/FLAIR in 4-5 mm slices) is co-registered
as ``brats-seg prepare`` does it (2 mm working copies, N4, the T1c's nonzero voxels as the brain),
once per thread count: the optimiser's path depends on the order ITK sums the metric in, so the
same input lands a little differently on machines with other core counts. Printed: the target
registration error over the brain per sequence (mean / max, mm) and the QC sharpness.

``--untouched`` registers the original, unmoved sequences onto their T1c instead and prints the
rigid parameters found: how well the BraTS files themselves are aligned (the floor under any
"known answer" made from them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "prepare"))

from conftest import SIM_CASE, brats18_files  # noqa: E402

from brats_seg.prepare import scan_set  # noqa: E402
from brats_seg.prepare.settings import PrepareConfig  # noqa: E402
from brats_seg.prepare.simulate import registration_error, simulate_case  # noqa: E402
from brats_seg.prepare.sitk_images import to_sitk  # noqa: E402
from brats_seg.prepare.steps import co_register, nonzero_mask, working_copy  # noqa: E402

MOVING = ("t1n", "t2w", "t2f")


def working(files: dict[str, Path], cfg: PrepareConfig):
    """``(scans, working copies, brain mask)`` of one case, as ``prepare`` makes them (brain: the
    T1c's nonzero voxels, these cases being skull-stripped)."""
    scans = scan_set(files, "case")
    native = {m: to_sitk(s.image, name=str(s.source)) for m, s in scans.series.items()}
    return scans, {m: working_copy(img, cfg) for m, img in native.items()}, nonzero_mask(native["t1c"])


def simulated(files: dict[str, Path], seeds: list[int], threads: list[int], cfg: PrepareConfig) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            truth = simulate_case(files, Path(tmp) / str(seed), seed=seed)
            scans, work, brain = working({m: Path(tmp) / str(seed) / s["file"] for m, s in truth["sequences"].items()},
                                         cfg)
            t1c = scans.series["t1c"].image
            points = np.argwhere(t1c.array > 0)[::20] @ t1c.affine[:3, :3].T + t1c.affine[:3, 3]
            for n in threads:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
                start, row = time.perf_counter(), []
                for m in MOVING:
                    reg, (_, sharpness) = co_register(work["t1c"], work[m], brain, cfg)
                    error = registration_error(reg.transform, truth, m, points)
                    row.append(f"{m} {error.mean():.2f}/{error.max():.2f} mm (sharpness {sharpness:.2f})")
                print(f"seed {seed} threads {n:2d} {time.perf_counter() - start:5.1f} s | " + " | ".join(row),
                      flush=True)


def untouched(files: dict[str, Path], cfg: PrepareConfig) -> None:
    _, work, brain = working(files, cfg)
    for m in MOVING:
        params = np.asarray(co_register(work["t1c"], work[m], brain, cfg)[0].transform.GetParameters())
        print(f"{m}: rotation {np.degrees(params[:3]).round(2)} degrees, translation {params[3:].round(2)} mm (LPS)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--case", default=SIM_CASE)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--threads", default="1,2,16")
    parser.add_argument("--untouched", action="store_true")
    args = parser.parse_args()
    files, cfg = brats18_files(args.data, args.case), PrepareConfig()
    if args.untouched:
        untouched(files, cfg)
    else:
        simulated(files, [int(s) for s in args.seeds.split(",")], [int(t) for t in args.threads.split(",")], cfg)


if __name__ == "__main__":
    main()
