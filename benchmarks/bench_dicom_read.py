"""Seconds to read one DICOM series with ``brats-seg prepare``'s reader (:func:`brats_seg.prepare.series.read_series`:
find the series from the headers, check the geometry, read the voxels with GDCM): a classic series
(one file per slice) vs the same volume as one Enhanced MR object, both explicit little endian,
written with ``tests/dicom_corpus.py`` from a real T1c resampled to ``--slices`` slices.

Usage::

    python benchmarks/bench_dicom_read.py [--data ../shared/data/brats2018] [--slices 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import zoom

ROOT = Path(__file__).resolve().parents[1]


def volume(data: Path, slices: int) -> np.ndarray:
    case = data / "Brats18_TCIA01_201_1" / "Brats18_TCIA01_201_1_t1ce.nii.gz"
    v = np.asarray(nib.load(case).dataobj, dtype=np.float32)
    return np.round(zoom(v, (1, 1, slices / v.shape[2]), order=1)).astype(np.int16)


def timed(folder: Path, repeats: int, expected: np.ndarray) -> list[float]:
    from brats_seg.prepare.series import read_series

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        series = read_series(folder)
        times.append(time.perf_counter() - t0)
        assert np.array_equal(series.image.array, expected)
    return times


def main(argv=None) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from dicom_corpus import ORIGIN, Source, Writer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "brats2018")
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    v = volume(args.data, args.slices)
    with tempfile.TemporaryDirectory() as tmp:
        w = Writer(Path(tmp))
        src = Source(v, np.eye(3), np.asarray(ORIGIN))
        classic = w.save(w.slices(src, "AX T1 MPRAGE POST GD", 7), "classic")
        enhanced = Path(tmp) / "enhanced"
        enhanced.mkdir()
        w.enhanced(src, "AX T1 MPRAGE POST GD", 8).save_as(enhanced / "MF0001", enforce_file_format=True)
        print(f"volume {'x'.join(map(str, v.shape))} int16 ({v.nbytes / 2**20:.1f} MiB), {args.repeats} reads each,"
              " median seconds (min-max):")
        for name, folder in (("classic, one file per slice", classic), ("Enhanced MR, one object", enhanced)):
            t = timed(folder, args.repeats, v)
            print(f"  {name:30s} {np.median(t):6.2f} ({min(t):.2f}-{max(t):.2f})")


if __name__ == "__main__":
    main()
