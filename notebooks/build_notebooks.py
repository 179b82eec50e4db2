"""Write ``quickstart.ipynb`` and ``explore_case.ipynb`` (nbformat v4, outputs cleared).

The notebooks are generated so that they stay reviewable as code: edit the cells here, run
``python notebooks/build_notebooks.py``, commit both. ``tests/test_notebooks.py`` executes them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from IPython.display import Image, display

import brats_seg as bs
from brats_seg.evaluation.overlays import overlay_figure

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets: text bars are fine
# Scratch space for this notebook's files (set BRATS_SEG_NOTEBOOK_WORK to keep them).
WORK = Path(os.environ.get("BRATS_SEG_NOTEBOOK_WORK") or tempfile.mkdtemp(prefix="brats_seg_nb_"))
WORK.mkdir(parents=True, exist_ok=True)
print("working folder:", WORK)'''

QUICKSTART = [
    new_markdown_cell("""\
# brats_seg quickstart: load, look, predict, score

One BraTS case from start to finish in the Python API:

1. find and load a case (`discover_cases`, `load_case`),
2. look at it (three-plane overlay of the tumor regions WT / TC / ET),
3. get a checkpoint (here: a tiny model trained for a few dozen steps on CPU),
4. predict the case with `Predictor` and score it with `evaluate_case`.

Data: set the environment variable `BRATS_SEG_DATA` to a labeled dataset folder in any
supported layout (BraTS 2021/2023, MSD, nnU-Net, CSV). Without it, three small synthetic
cases are made (`synthesize_dataset`, 3 mm voxels), so the notebook runs anywhere in about
half a minute. The tiny model is a smoke test of the pipeline, not a good segmenter:
`brats-seg train` with `--preset base` on real data is."""),
    new_code_cell(SETUP),
    new_markdown_cell("## 1. Find and load a case"),
    new_code_cell('''\
DATA = os.environ.get("BRATS_SEG_DATA")
if not DATA:
    bs.synthesize_dataset(WORK / "data", 3, spacing=3.0, seed=0, progress=False)
    DATA = WORK / "data"
cases = [c for c in bs.discover_cases(DATA) if c.label is not None]
print(f"{len(cases)} labeled cases in {DATA} (layout {cases[0].layout})")

case = cases[-1]                       # the case we predict; the others train the model
vol = bs.load_case(case)               # image (C, H, W, D) float32, channels by name
print(case.case_id, "image", vol.image.shape, "channels", vol.channels)
print("label scheme", vol.label_scheme, "values", np.unique(vol.label).tolist(),
      "spacing", tuple(round(float(s), 2) for s in vol.reference.spacing))'''),
    new_markdown_cell("## 2. Look at it\nFLAIR (`t2f`) with the reference regions: WT green, TC yellow, ET red."),
    new_code_cell('''\
flair = vol.image[vol.channels.index("t2f")]
overlay_figure(flair, {"reference": (vol.label, vol.label_scheme)}, WORK / "case.png", title=case.case_id)
display(Image(filename=str(WORK / "case.png")))'''),
    new_markdown_cell("""\
## 3. A checkpoint

A tiny U-Net trained for 2 x 8 steps on the other cases' 32^3 crops (seconds on a CPU).
A checkpoint is one `.pt` file holding the weights and everything needed to predict:
channel names, label scheme, preprocessing, patch size. To skip training, an untrained one is
`bs.save_checkpoint(make_checkpoint(model, model_name="unet3d", model_kwargs=model.build_kwargs), path)`
with `model = bs.build_model("unet3d", preset="tiny")` and
`from brats_seg.checkpoint import make_checkpoint`."""),
    new_code_cell('''\
from brats_seg.data.preprocessing.preprocess import preprocess_dataset

preprocess_dataset(cases[:-1], WORK / "cache", workers=1, progress=False)
cfg = bs.TrainConfig(data=str(WORK / "cache"), out=str(WORK / "run"), model="unet3d", preset="tiny",
                     epochs=2, steps_per_epoch=8, patch=(32, 32, 32), batch_size=2, folds=1,
                     workers=0, threads=1, progress=False)
summary = bs.train(cfg)
checkpoint = WORK / "run" / "checkpoints" / "best.pt"
print(f"trained {summary['epochs']} epochs in {summary['seconds']:.1f} s;",
      "last loss", summary["history"][-1]["train_loss"], "->", checkpoint.name)'''),
    new_markdown_cell("## 4. Predict and score"),
    new_code_cell('''\
predictor = bs.Predictor([checkpoint], device="cpu", overlap=0.25)
pred = predictor.predict(vol)          # labels (H, W, D) in the case's scheme, probabilities (3, H, W, D)
print("predicted labels", np.unique(pred.labels).tolist(), "in", pred.info["seconds"], "s")
overlay_figure(flair, {"prediction": (pred.labels, pred.info["label_scheme"]),
                       "reference": (vol.label, vol.label_scheme)}, WORK / "prediction.png", title=case.case_id)
display(Image(filename=str(WORK / "prediction.png")))'''),
    new_code_cell('''\
scores = bs.evaluate_case(pred.labels, vol.label, vol.reference.spacing,
                          pred_scheme=pred.info["label_scheme"], ref_scheme=vol.label_scheme)
for region, m in scores.items():
    print(f"{region}: Dice {m['dice']:.3f}  HD95 {m['hd95']:.1f} mm")'''),
    new_markdown_cell("""\
Next: `brats-seg quickstart` does all of this with a real training budget and writes a report;
`brats-seg predict` and `brats-seg evaluate` do steps 4 for whole folders."""),
]

EXPLORE = [
    new_markdown_cell("""\
# Exploring a BraTS case

Intensity histograms per modality, label and region volumes, and slices through the tumor.
Set `BRATS_SEG_DATA` to a dataset folder (any supported layout); without it, the shared
BraTS 2018 cases beside the repository (`../shared/data/brats2018`) are used if present, else one
synthetic case is made. Raw MR intensities have no units: compare shapes of histograms, not values."""),
    new_code_cell(SETUP + '''
import matplotlib.pyplot as plt

from brats_seg.conventions import REGIONS, get_scheme, labels_to_regions'''),
    new_code_cell('''\
# BRATS_SEG_DATA, else the shared real cases next to the repository, else one synthetic case
candidates = [os.environ.get("BRATS_SEG_DATA"), "../../shared/data/brats2018"]
DATA = next((Path(c) for c in candidates if c and Path(c).exists()), None)
if DATA is None:
    print("no data found: using a synthetic case")
    bs.synthesize_dataset(WORK / "data", 1, spacing=2.0, seed=0, progress=False)
    DATA = WORK / "data"
case = next(c for c in bs.discover_cases(DATA) if c.label is not None)
vol = bs.load_case(case)
spacing = tuple(float(s) for s in vol.reference.spacing)
brain = vol.image.any(axis=0)
print(f"case {case.case_id} ({case.layout}): shape {vol.image.shape[1:]}, spacing {spacing} mm,"
      f" channels {vol.channels}, scheme {vol.label_scheme}")
print(f"brain: {brain.sum() * np.prod(spacing) / 1000:.0f} mL")'''),
    new_markdown_cell("## Intensity histograms (nonzero brain voxels), with the whole tumor's"),
    new_code_cell('''\
wt = labels_to_regions(vol.label, vol.label_scheme)[0]
fig, axes = plt.subplots(1, len(vol.channels), figsize=(4 * len(vol.channels), 3))
for ax, name, img in zip(axes, vol.channels, vol.image):
    values = img[brain & (img != 0)]
    bins = np.linspace(*np.percentile(values, (0.5, 99.5)), 80)
    ax.hist(values, bins=bins, color="0.6", label="brain")
    ax.hist(img[wt & (img != 0)], bins=bins, color="tab:red", alpha=0.7, label="whole tumor")
    ax.set_title(name)
    ax.set_yscale("log")
axes[0].legend()
plt.tight_layout()
plt.show()
for name, img in zip(vol.channels, vol.image):
    v = img[brain & (img != 0)]
    print(f"{name}: median {np.median(v):.1f}, 1-99% [{np.percentile(v, 1):.1f}, {np.percentile(v, 99):.1f}],"
          f" tumor/brain median ratio {np.median(img[wt & (img != 0)]) / np.median(v):.2f}")'''),
    new_markdown_cell("## Label and region volumes"),
    new_code_cell('''\
voxel_ml = float(np.prod(spacing)) / 1000.0
scheme = get_scheme(vol.label_scheme)
values, counts = np.unique(vol.label, return_counts=True)
for v, n in zip(values.tolist(), counts.tolist()):
    if v:
        print(f"label {v}: {n} voxels, {n * voxel_ml:.1f} mL")
regions = labels_to_regions(vol.label, vol.label_scheme)
volumes = {r: float(regions[k].sum() * voxel_ml) for k, r in enumerate(REGIONS)}
for r, ml in volumes.items():
    print(f"{r} volume: {ml:.1f} mL")'''),
    new_markdown_cell("## Slices through the tumor's centre"),
    new_code_cell('''\
from brats_seg.evaluation.overlays import focus_point

i, j, k = focus_point(regions[0])
fig, axes = plt.subplots(1, len(vol.channels), figsize=(4 * len(vol.channels), 4))
for ax, name, img in zip(axes, vol.channels, vol.image):
    ax.imshow(np.rot90(img[:, :, k]), cmap="gray")
    ax.contour(np.rot90(regions[0][:, :, k]), levels=[0.5], colors="lime", linewidths=0.8)
    ax.contour(np.rot90(regions[2][:, :, k]), levels=[0.5], colors="red", linewidths=0.8)
    ax.set_title(f"{name}, axial slice {k}")
    ax.axis("off")
plt.tight_layout()
plt.show()
overlay_figure(vol.image[vol.channels.index("t2f")], {"reference": (vol.label, vol.label_scheme)},
               WORK / "explore.png", title=case.case_id)
display(Image(filename=str(WORK / "explore.png")))'''),
]


def build(cells: list, path: Path) -> Path:
    for i, cell in enumerate(cells):
        cell.id = f"{path.stem}-{i:02d}"  # stable ids: rebuilding an unchanged notebook changes no byte
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path


def main() -> None:
    for name, cells in (("quickstart.ipynb", QUICKSTART), ("explore_case.ipynb", EXPLORE)):
        print("wrote", build(cells, HERE / name))


if __name__ == "__main__":
    main()
