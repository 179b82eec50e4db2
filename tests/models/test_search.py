"""V-NAS: search space, bilevel search (resumable, logged), genotype files, and the searched network."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from brats_seg.errors import ConfigError
from brats_seg.models.nas.genotype import OP_NAMES, load_genotype, save_genotype, validate_genotype
from brats_seg.models.nas.search_space import VNASSearchNet
from brats_seg.models.registry import build_model
from brats_seg.training.search import SearchConfig, search

SMALL = dict(features=[4, 8], strides=[1, 2])


def synthetic_pairs(n=2, size=16):
    """Tumor-like cubes brighter in every channel; regions nested WT > TC > ET."""
    pairs = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        image = rng.normal(size=(4, size, size, size)).astype(np.float32)
        regions = np.zeros((3, size, size, size), np.float32)
        lo = 3 + seed
        for r, m in enumerate((0, 2, 3)):
            regions[r, lo + m:lo + 8 - m, lo + m:lo + 8 - m, lo + m:lo + 8 - m] = 1
        image += 2.0 * regions[0] + 2.0 * regions[2]
        pairs.append((image, regions))
    return pairs


def cfg(**kw):
    return SearchConfig(**{"epochs": 2, "steps_per_epoch": 2, "patch_size": [16, 16, 16], "batch_size": 2,
                           "arch_lr": 0.05, **SMALL, **kw})


def test_search_space_keeps_arch_and_weights_apart():
    net = VNASSearchNet(in_channels=4, out_channels=3, **SMALL)
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert len(arch) == 1 and arch[0].shape == (3, len(OP_NAMES))  # 2 encoder cells + 1 decoder cell
    assert not {id(p) for p in arch} & {id(p) for p in weights}
    assert len(arch) + len(weights) == len(list(net.parameters()))
    assert net(torch.randn(1, 4, 8, 8, 8)).shape == (1, 3, 8, 8, 8)
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, 2] = 1.0
    assert net.genotype()["cells"] == ["p3d"] * 3


def test_search_changes_alphas_logs_and_resumes(tmp_path):
    pairs = synthetic_pairs()
    g = search(pairs, tmp_path / "a", cfg(), progress=False)
    assert (tmp_path / "a" / "arch_weights.png").stat().st_size > 1000
    assert load_genotype(tmp_path / "a" / "genotype.json") == validate_genotype(g)
    w = np.asarray(g["weights"])
    assert w.shape == (3, 3) and np.abs(w - 1 / 3).max() > 0.01, "architecture weights moved"
    with pytest.raises(ConfigError, match="resume"):
        search(pairs, tmp_path / "a", cfg(), progress=False)
    g3 = search(pairs, tmp_path / "a", cfg(epochs=3), resume=True, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "a" / "arch_log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and "cell2_p3d" in rows[0]
    state = torch.load(tmp_path / "a" / "search_state.pt", weights_only=True)
    assert state["epoch"] == 3
    # the interrupted-and-resumed search ends where an uninterrupted one does
    straight = search(pairs, tmp_path / "b", cfg(epochs=3), progress=False)
    np.testing.assert_allclose(g3["weights"], straight["weights"], atol=1e-4)


def test_vnas_from_genotype_trains(tmp_path):
    genotype = {"cells": ["p3d", "conv2d", "conv3d"]}
    path = save_genotype(genotype, tmp_path / "genotype.json")
    loaded = load_genotype(path)
    assert json.loads(path.read_text())["cells"] == loaded["cells"] == genotype["cells"]
    torch.manual_seed(0)
    model = build_model("vnas", preset="tiny", genotype=loaded, **SMALL).train()
    kinds = [tuple(m.kernel_size) for m in model.encoder.stages[0].modules() if isinstance(m, torch.nn.Conv3d)]
    assert kinds == [(3, 3, 1), (1, 1, 3), (3, 3, 1), (1, 1, 3)], "cell 0 is the pseudo-3-D pair"
    again = build_model("vnas", **json.loads(json.dumps(model.build_kwargs)))
    assert list(again.state_dict()) == list(model.state_dict())
    image, regions = (torch.from_numpy(a[None]) for a in synthetic_pairs(1)[0])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(image), regions)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_genotype_validation_errors(tmp_path):
    with pytest.raises(ConfigError, match="cell 1 has unknown op 'conv4d'"):
        validate_genotype({"cells": ["conv3d", "conv4d"]})
    with pytest.raises(ConfigError, match="3 cells do not fit a network of 3 levels"):
        build_model("vnas", preset="tiny", genotype={"cells": ["conv3d"] * 3})
    with pytest.raises(ConfigError, match="pass the dict"):
        build_model("vnas", preset="tiny", genotype="genotype.json")
    (tmp_path / "bad.json").write_text("{cells: ")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_genotype(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        load_genotype(tmp_path / "missing.json")


def test_vnas_trains_with_the_trainer_and_rebuilds_from_checkpoint(tmp_path):
    """A genotype goes in as a plain model argument, lands in the checkpoint, and rebuilds the network."""
    from brats_seg.checkpoint import load_checkpoint, model_from_checkpoint
    from brats_seg.training.trainer import TrainConfig, train
    from helpers import tiny_volumes, write_nifti

    for i in range(2):
        vols, label = tiny_volumes(seed=i)
        case = tmp_path / "data" / f"BraTS2021_0000{i}"
        for name, v in vols.items():
            write_nifti(case / f"{case.name}_{name}.nii.gz", v)
        write_nifti(case / f"{case.name}_seg.nii.gz", label)
    genotype = {"cells": ["p3d", "conv2d", "conv3d", "conv2d", "p3d"]}
    summary = train(TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), model="vnas", preset="tiny",
                                model_kwargs={"genotype": genotype}, epochs=2, steps_per_epoch=2, patch=(16, 16, 16),
                                batch_size=2, workers=0, folds=2, progress=False, augment=False))
    assert len(summary["history"]) == 2
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["model"]["name"] == "vnas" and ckpt["model"]["kwargs"]["genotype"]["cells"] == genotype["cells"]
    model = model_from_checkpoint(ckpt)
    assert model.genotype_cells == genotype["cells"]
