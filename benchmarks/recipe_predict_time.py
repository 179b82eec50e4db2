"""End-to-end prediction time of a ``recipe_cv.py`` run with the package's :class:`brats_seg.Predictor`.

Per case and torch thread count: read the four raw ``.nii.gz`` files, ``Predictor.predict`` (crop,
resample to the checkpoint's spacing, normalize, sliding window with ``--tta`` mirrors, restore to
the input grid, threshold) and write the label NIfTI; wall seconds and process CPU seconds per stage.
On a shared machine the CPU seconds are the stable figure; wall seconds with 2 threads are only
meaningful when the other core is idle::

    taskset -c 0,1 python benchmarks/recipe_predict_time.py base A --tta 1,4 --threads 1,2 --cases 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import recipe_cv as rc


def timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    import torch

    from brats_seg import Predictor
    from brats_seg.data.reading.image_io import write_label
    from brats_seg.data.reading.volumes import load_case

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("fold")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--tta", default="1")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()
    ckpt = rc.run_dir(args.name, args.fold, args.steps) / "checkpoints" / "last.pt"
    test = {c.case_id: c for c in rc.all_cases() if c.case_id not in rc.FOLDS[args.fold]}
    cases = [test[c] for c in sorted(test)[: args.cases]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for tta in (int(t) for t in args.tta.split(",")):
                predictor = Predictor([ckpt], device="cpu", tta=tta)
                for case in cases:
                    vol, w_load, c_load = timed(load_case, case, predictor.channels, with_label=False)
                    pred, w_pred, c_pred = timed(predictor.predict, vol)
                    _, w_write, c_write = timed(write_label, Path(tmp) / f"{case.case_id}.nii.gz", pred.labels,
                                                vol.reference)
                    row = {"case": case.case_id, "threads": threads, "tta": tta,
                           "wall": {"load": w_load, "predict": w_pred, "write": w_write},
                           "cpu": {"load": c_load, "predict": c_pred, "write": c_write}}
                    rows.append(row)
                    total_w, total_c = sum(row["wall"].values()), sum(row["cpu"].values())
                    print(f"{case.case_id} threads {threads} tta {tta}: wall {total_w:.1f} s "
                          f"(load {w_load:.1f}, predict {w_pred:.1f}, write {w_write:.1f}), CPU {total_c:.1f} s",
                          flush=True)
    out = ckpt.parents[1] / "predict_time.json"
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
