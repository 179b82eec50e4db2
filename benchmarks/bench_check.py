"""Time ``check_dataset`` against an nnU-Net-style integrity check, side by side in one process.

The peer does what nnU-Net v2's ``verify_dataset_integrity`` does per case: read
every image and the label with SimpleITK, compare shapes and spacings, look for
NaN, and ``np.unique`` the label. Ours reads each file once (gzip verified to its
CRC), checks more (affines, all-zero, 4-D, scheme) and uses a bincount for the
label values. Both run on the same cases; the ratio is printed.

    .venv/bin/python benchmarks/bench_check.py [DATA] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from brats_seg.data.checks import check_cases
from brats_seg.data.layouts import discover_cases


def peer_check(cases) -> list[bool]:
    """nnU-Net v2 verify_dataset_integrity, per case (sequential reads with SimpleITK)."""
    import SimpleITK as sitk

    ok = []
    for case in cases:
        images = [sitk.ReadImage(str(p)) for p in dict.fromkeys(case.images.values())]
        arrays = [sitk.GetArrayFromImage(i) for i in images]
        good = all(not np.isnan(a).any() for a in arrays)
        good &= all(a.shape == arrays[0].shape for a in arrays)
        good &= all(np.allclose(i.GetSpacing(), images[0].GetSpacing()) for i in images)
        if case.label is not None:
            seg = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label)))
            good &= seg.shape == arrays[0].shape
            np.unique(seg)
        ok.append(bool(good))
    return ok


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    default = Path(os.environ.get("BRATS_SEG_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(default / "brats2018"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = discover_cases(args.data)
    print(f"{len(cases)} cases from {args.data}; best of {args.repeat}")
    peer = best_of(lambda: peer_check(cases), args.repeat)
    ours1 = best_of(lambda: check_cases(cases, progress=False, workers=1), args.repeat)
    ours = best_of(lambda: check_cases(cases, progress=False), args.repeat)
    print(f"nnU-Net-style (SimpleITK, np.unique), 1 thread : {peer / len(cases):.3f} s/case")
    print(f"brats_seg check_cases, 1 thread              : {ours1 / len(cases):.3f} s/case  ({peer / ours1:.2f}x)")
    print(f"brats_seg check_cases, default pool          : {ours / len(cases):.3f} s/case  ({peer / ours:.2f}x)")


if __name__ == "__main__":
    main()
