"""Time ``check_dataset`` against an nnU-Net-style integrity check, side by side in one process.

The peer does what nnU-Net v2's ``verify_dataset_integrity`` does per case: read
every image and the label with SimpleITK, compare shapes and spacings, look for
NaN, and ``np.unique`` the label. Ours reads each file once (gzip verified to its
CRC), checks more (affines, all-zero, 4-D, scheme) and uses a bincount for the
label values. Both run on the same cases; the ratio is printed.

Second table: what the gate costs a command that reads cases. ``load_case`` (the one gate,
:func:`brats_seg.data.reading.checks.read_case`: every check on the arrays it reads, each file read once)
against reading the case with nibabel and no check at all (the old ``load_case``), and against
checking first and then reading (``check_case`` + nibabel: every volume read twice).

    .venv/bin/python benchmarks/bench_check.py [DATA] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from brats_seg.data.reading.checks import check_case, check_cases
from brats_seg.data.reading.image_io import read_image
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case


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


def unchecked_read(case) -> np.ndarray:
    """Read the four sequences and the label with nibabel, no check (what load_case did before the gate)."""
    image = np.stack([read_image(case.images[m]).array for m in ("t1n", "t1c", "t2w", "t2f")])
    if case.label is not None:
        np.asarray(read_image(case.label, dtype=None).array).astype(np.uint8)
    return image


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
    gate = best_of(lambda: [load_case(c) for c in cases], args.repeat)
    bare = best_of(lambda: [unchecked_read(c) for c in cases], args.repeat)
    twice = best_of(lambda: [(check_case(c), unchecked_read(c)) for c in cases], args.repeat)
    print("reading a case for work, 1 thread:")
    print(f"  nibabel, no checks                         : {bare / len(cases):.3f} s/case")
    print(f"  load_case (the gate, each file read once)  : {gate / len(cases):.3f} s/case  ({gate / bare:.2f}x"
          f" the unchecked read)")
    print(f"  check_case then nibabel (read twice)       : {twice / len(cases):.3f} s/case  ({twice / gate:.2f}x"
          f" the gate)")


if __name__ == "__main__":
    main()
