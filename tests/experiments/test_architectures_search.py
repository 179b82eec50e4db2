"""The searched arm of ``experiment architectures``: without ``--genotype`` it searches a genotype on the
training cases first, then trains and scores it beside the hand-made models, with parameters and GFLOPs."""

from __future__ import annotations

import csv
import json

import pytest

from brats_seg.checkpoint import load_checkpoint
from brats_seg.experiments.architectures import ArchitecturesConfig, SearchBudget, run
from brats_seg.experiments.arms import Budget
from brats_seg.experiments.datasets import DataPlan
from brats_seg.models.nas.genotype import load_genotype, model_arguments
from brats_seg.models.profile import profile_model
from brats_seg.models.registry import build_model, count_parameters
from helpers import tiny_volumes, write_nifti


@pytest.mark.slow
def test_architectures_searches_the_vnas_genotype_on_the_training_cases(tmp_path):
    for i in range(3):
        vols, label = tiny_volumes(seed=i)
        case = tmp_path / "data" / f"BraTS2021_0000{i}"
        for name, v in vols.items():
            write_nifti(case / f"{case.name}_{name}.nii.gz", v)
        write_nifti(case / f"{case.name}_seg.nii.gz", label)
    config = ArchitecturesConfig(models=("unet3d", "vnas"), data=DataPlan(n_test=1),
                                 budget=Budget(preset="tiny", epochs=1, steps_per_epoch=1, patch=(16, 16, 16),
                                               batch_size=1, threads=1, augment=False),
                                 search=SearchBudget(epochs=2, warmup_epochs=1, steps_per_epoch=1))
    out = tmp_path / "arch"
    summary = run(tmp_path / "data", out, config=config, progress=False)
    genotype = load_genotype(out / "search" / "genotype.json")
    searched = json.loads((out / "search" / "splits.json").read_text())["splits"][0]
    assert set(searched["train"] + searched["val"]) == set(summary["train_cases"])  # never the held-out case
    rows = {r["model"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"unet3d", "vnas"}
    kwargs = model_arguments(genotype)
    assert int(rows["vnas"]["parameters"]) == count_parameters(build_model("vnas", preset="tiny", **kwargs))
    for name, kw in (("vnas", kwargs), ("unet3d", {})):
        want = profile_model(name, preset="tiny", patch=(16, 16, 16), **kw)["gflops"]
        assert float(rows[name]["gflops"]) == pytest.approx(want, abs=1e-3)
    trained = load_checkpoint(out / "runs" / "vnas" / "checkpoints" / "best.pt")
    assert trained["model"]["kwargs"]["genotype"]["encoder"] == genotype["encoder"]  # the searched network trained
    md = (out / "results.md").read_text()
    assert "vnas: genotype from a short search on the training cases (2 epochs, 1 of them warm-up" in md
    assert any(line.startswith("| model | parameters | gflops |") for line in md.splitlines())
