"""Peak resident memory per case: our prediction vs MONAI's whole-volume recipe, 240x240x155 and 512x512x200.

Each recipe runs in a FRESH process (peak RSS only ever grows, so one process cannot
measure two recipes), from the files to a written label map, as ``brats-seg predict``
does: read the four volumes (float32), predict, write uint8 labels.

* ours: ``Predictor`` + ``predict_case`` (float buffers on the brain's box only, labels
  pasted as uint8), with the checkpoint's training spacing (1 mm: the 512 volume's crop is
  resampled to 1 mm first) and without it (every case on its own grid), and on the
  OpenVINO back-end (fp32);
* MONAI: ``NormalizeIntensity(nonzero=True, channel_wise=True)``,
  ``sliding_window_inference`` (Gaussian) over the whole volume, sigmoid, threshold,
  labels, ``nibabel`` write.

Cases: a real 240x240x155 BraTS case, and the same case resampled (linear) to 512x512x200
(0.47x0.47x0.78 mm, int16 as scanners write it) in a temporary folder. The network is
``unet3d`` tiny with random weights and 128^3 windows unless ``--checkpoint`` is given:
memory here is about the volume-sized buffers, not the network's activations. Printed per
case and recipe: peak RSS, RSS after imports and loading the network (baseline), seconds.

Measured 2026-12-02 (2 threads, 2 cores shared with other jobs; peak RSS, seconds):
240x240x155: ours 2.87 GB 75 s, ours-native 2.87 GB, ours-openvino 2.26 GB 37 s, MONAI 2.89 GB 189 s;
512x512x200: ours 3.69 GB 115 s, ours-native 4.09 GB 271 s, ours-openvino 3.24 GB 67 s,
MONAI 4.36 GB 938 s. Baseline (imports, network) 0.95-1.03 GB in every process.

    flock /tmp/brats_cpu.lock .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASE = ROOT.parent / "shared" / "data" / "brats2021" / "BraTS2021_00002"
RECIPES = ("ours", "ours-native", "ours-openvino", "monai")


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def make_checkpoint_file(path: Path, window: int) -> Path:
    import torch

    from brats_seg.checkpoint import make_checkpoint, save_checkpoint
    from brats_seg.models.registry import build_model

    torch.manual_seed(0)
    net = build_model("unet3d", preset="tiny")
    ckpt = make_checkpoint(net, model_name="unet3d", model_kwargs=net.build_kwargs, patch_size=(window,) * 3)
    ckpt["spacing"] = [1.0, 1.0, 1.0]
    return save_checkpoint(ckpt, path)


def upsampled_case(src: Path, dst: Path, shape=(512, 512, 200)) -> Path:
    """``src`` resampled (linear) to ``shape``, written as int16 NIfTI with the matching affine."""
    import nibabel as nib
    from scipy import ndimage

    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.nii.gz")):
        img = nib.load(str(f))
        data = np.asarray(img.dataobj)
        factors = np.asarray(shape) / np.asarray(data.shape)
        order = 0 if f.name.endswith("_seg.nii.gz") else 1
        out = ndimage.zoom(data.astype(np.float32), factors, order=order, grid_mode=True, mode="nearest")
        affine = img.affine @ np.diag([*(1 / factors), 1.0])
        affine[:3, 3] = img.affine[:3, 3] + img.affine[:3, :3] @ ((1 / factors - 1) / 2)
        dtype = np.uint8 if order == 0 else np.int16
        nib.save(nib.Nifti1Image(np.rint(out).astype(dtype), affine), str(dst / f.name))
    return dst


def child(recipe: str, case_dir: Path, ckpt: Path, out: Path) -> None:
    """Run one recipe on one case in this (fresh) process and print its figures as JSON."""
    from brats_seg.checkpoint import load_checkpoint
    from brats_seg.data.reading.layouts import discover_cases

    case = discover_cases(case_dir)[0]
    loaded = load_checkpoint(ckpt)
    if recipe == "ours-native":
        loaded.pop("spacing", None)
    if recipe.startswith("ours"):
        from brats_seg.inference.batch_prediction import OutputOptions, output_paths, predict_case
        from brats_seg.inference.predictor import Predictor

        backend = "openvino" if recipe == "ours-openvino" else "torch"
        predictor = Predictor([loaded], device="cpu", backend=backend, warn=False)
        base = rss_gb()
        t = time.perf_counter()
        predict_case(predictor, case, output_paths(out, case.case_id), OutputOptions())
    else:
        base, t = monai_child(case, loaded, out)
    print(json.dumps({"peak": rss_gb(), "base": base, "seconds": time.perf_counter() - t}))


def monai_child(case, loaded, out: Path) -> tuple[float, float]:
    import nibabel as nib
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import NormalizeIntensity

    from brats_seg.checkpoint import model_from_checkpoint
    from brats_seg.conventions import regions_to_labels
    from brats_seg.data.reading.volumes import load_case

    net = model_from_checkpoint(loaded).eval()
    window = tuple(loaded["patch_size"])
    base, t = rss_gb(), time.perf_counter()
    vol = load_case(case, with_label=False)
    x = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.from_numpy(vol.image)).as_tensor()[None]
    with torch.inference_mode():
        probs = torch.sigmoid(sliding_window_inference(x, window, 4, net, overlap=0.5, mode="gaussian"))[0]
    labels = regions_to_labels(probs.numpy() > 0.5, "brats2021")
    out.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, vol.reference.affine), str(out / f"{case.case_id}.nii.gz"))
    return base, t


def measure(recipe: str, case_dir: Path, ckpt: Path, out: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", recipe, str(case_dir), str(ckpt), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{recipe} on {case_dir.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", type=Path, default=DEFAULT_CASE, help="a real 240x240x155 case folder")
    p.add_argument("--checkpoint", type=Path, help="default: unet3d tiny, random weights, 128^3 window")
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], *(Path(a) for a in args.child[1:]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.checkpoint or make_checkpoint_file(tmp / "tiny.pt", args.window)
        cases = {"240x240x155": args.case, "512x512x200": upsampled_case(args.case, tmp / "big" / args.case.name)}
        print(f"checkpoint {ckpt if args.checkpoint else 'unet3d tiny (random weights), training spacing 1 mm'};"
              f" {args.threads} thread(s); each recipe in a fresh process, from the files to a written label map")
        for size, case_dir in cases.items():
            for recipe in args.recipes:
                r = measure(recipe, case_dir, ckpt, tmp / f"out_{recipe}", args.threads)
                print(f"  {size} {recipe:12s} peak RSS {r['peak']:5.2f} GB (baseline {r['base']:4.2f} GB,"
                      f" +{r['peak'] - r['base']:4.2f} GB for the case), {r['seconds']:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
