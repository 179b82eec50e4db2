"""V-NAS: the two search spaces, the pure mixed op, the search (warm-up, alternating, resumable, logged),
genotype files (format 2, format 1 still read), and the search through the CLI on a raw dataset."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from brats_seg.cli import main
from brats_seg.errors import ConfigError
from brats_seg.models.nas.genotype import (
    OP_NAMES,
    layer_ops,
    load_genotype,
    model_arguments,
    save_genotype,
    validate_genotype,
)
from brats_seg.models.nas.ops import MixedConv, make_op
from brats_seg.models.nas.search_space import VNASSearchNet, search_space_size
from brats_seg.models.registry import build_model
from brats_seg.training.search import SearchConfig, search
from helpers import tiny_volumes, write_nifti

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
    return SearchConfig(**{"epochs": 2, "warmup_epochs": 0, "steps_per_epoch": 2, "patch_size": [16, 16, 16],
                           "batch_size": 2, "arch_lr": 0.05, "threads": 1, **SMALL, **kw})


def kernels(module):
    return [tuple(m.kernel_size) for m in module.modules() if isinstance(m, torch.nn.Conv3d)]


def test_mixed_conv_is_a_pure_function_of_input_and_weights():
    torch.manual_seed(0)
    mixed = MixedConv(2, 3).eval()
    x = torch.randn(1, 2, 6, 6, 6)
    w = torch.tensor([0.2, 0.5, 0.3])
    expected = sum(wk * op(x) for wk, op in zip(w, mixed.candidates))
    assert torch.allclose(mixed(x, w), expected)
    for k in range(len(OP_NAMES)):  # a one-hot weight is exactly that op
        assert torch.allclose(mixed(x, torch.eye(len(OP_NAMES))[k]), mixed.candidates[k](x))
    assert torch.allclose(mixed(x, w), expected), "no state carried over between calls"
    assert all(not hasattr(m, "mix_weights") for m in mixed.modules())
    assert kernels(make_op("p3d", 2, 3)) == [(3, 3, 1), (1, 1, 3)]


def test_layer_space_searches_every_convolution_of_encoder_and_decoder():
    net = VNASSearchNet(in_channels=4, out_channels=3, features=[8, 16, 32], strides=[1, 2, 2])
    assert net.alphas.shape == (10, len(OP_NAMES))  # 3 encoder + 2 decoder levels x 1 block x 2 layers
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert not {id(p) for p in arch} & {id(p) for p in weights}
    assert len(arch) + len(weights) == len(list(net.parameters()))
    mixed = [m for m in net.modules() if isinstance(m, MixedConv)]
    assert len(mixed) == 10
    in_mixed = {id(c) for m in mixed for c in m.modules() if isinstance(c, torch.nn.Conv3d)}
    spatial = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d) and max(m.kernel_size) > 1]
    assert spatial and all(id(m) in in_mixed for m in spatial), "every spatial convolution is searched"
    assert net(torch.randn(1, 4, 8, 8, 8)).shape == (1, 3, 8, 8, 8)
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, 2] = 1.0
    g = net.genotype()
    assert g["space"] == "layer" and layer_ops(g) == ["p3d"] * 10 and len(g["decoder"]) == 2
    model = build_model("vnas", preset="tiny", **model_arguments(g))
    assert {k for k in kernels(model) if max(k) > 1} == {(3, 3, 1), (1, 1, 3)}, "only the searched ops remain"
    assert search_space_size("layer", [1, 1, 1], [1, 1]) == (10, 3 ** 10)
    assert search_space_size("layer", [1, 3, 4, 6, 3], [1] * 4) == (42, 3 ** 42)
    assert search_space_size("level", [1] * 5, [1] * 4) == (9, 3 ** 9)


def test_level_space_is_the_smaller_option(tmp_path):
    net = VNASSearchNet(in_channels=4, out_channels=3, space="level", **SMALL)
    assert net.alphas.shape == (3, len(OP_NAMES))  # 2 encoder levels + 1 decoder level
    assert net(torch.randn(1, 4, 8, 8, 8)).shape == (1, 3, 8, 8, 8)
    g = net.genotype()
    assert g["space"] == "level" and all(len(ops) == 1 for ops in g["encoder"] + g["decoder"])
    found = search(synthetic_pairs(), tmp_path / "level", cfg(space="level", epochs=1), progress=False)
    assert found["space"] == "level" and len(layer_ops(found)) == 3
    assert "dec0_conv2d" in (tmp_path / "level" / "arch_log.csv").read_text().splitlines()[0]


def test_search_warms_up_then_searches_logs_and_resumes(tmp_path):
    pairs = synthetic_pairs()
    g = search(pairs, tmp_path / "a", cfg(epochs=3, warmup_epochs=1), progress=False)
    assert (tmp_path / "a" / "arch_weights.png").stat().st_size > 1000
    assert load_genotype(tmp_path / "a" / "genotype.json") == validate_genotype(g)
    rows = list(csv.DictReader(open(tmp_path / "a" / "arch_log.csv")))
    assert [r["phase"] for r in rows] == ["warmup", "search", "search"] and "dec0.b0b_p3d" in rows[0]
    state = torch.load(tmp_path / "a" / "search_state.pt", weights_only=True)
    w0 = np.asarray(state["history"][0]["weights"])
    assert np.abs(w0 - 1 / 3).max() < 0.002, "the warm-up epoch leaves the architecture at its near-uniform start"
    w = np.asarray(g["weights"])
    assert w.shape == (6, 3) and np.abs(w - w0).max() > 0.01, "architecture weights moved after the warm-up"
    with pytest.raises(ConfigError, match="resume"):
        search(pairs, tmp_path / "a", cfg(epochs=3, warmup_epochs=1), progress=False)
    g4 = search(pairs, tmp_path / "a", cfg(epochs=4, warmup_epochs=1), resume=True, progress=False)
    assert [r["epoch"] for r in csv.DictReader(open(tmp_path / "a" / "arch_log.csv"))] == ["0", "1", "2", "3"]
    straight = search(pairs, tmp_path / "b", cfg(epochs=4, warmup_epochs=1), progress=False)
    np.testing.assert_allclose(g4["weights"], straight["weights"], atol=1e-4)  # resumed == uninterrupted
    with pytest.raises(ConfigError, match="warm-up epochs"):
        search(pairs, tmp_path / "c", cfg(epochs=2, warmup_epochs=2), progress=False)


def test_vnas_from_genotype_trains(tmp_path):
    genotype = {"space": "layer", "encoder": [["p3d", "conv2d"], ["conv3d", "conv3d"]],
                "decoder": [["conv2d", "conv2d", "p3d", "conv3d"]]}  # two residual blocks in the decoder
    path = save_genotype(genotype, tmp_path / "genotype.json")
    loaded = load_genotype(path)
    assert json.loads(path.read_text())["format"] == 2 and loaded["decoder"] == genotype["decoder"]
    torch.manual_seed(0)
    model = build_model("vnas", preset="tiny", **model_arguments(loaded), **SMALL).train()
    assert model.build_kwargs["decoder_blocks"] == [2]
    assert kernels(model.encoder.stages[0].blocks[0].layer_a) == [(3, 3, 1), (1, 1, 3)], "first layer: P3D"
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


def test_format1_genotypes_still_build_the_level_network(tmp_path):
    """A genotype.json of the first release (``cells``, decoder deepest first) reads as the level space."""
    old = {"format": 1, "ops": list(OP_NAMES), "cells": ["p3d", "conv2d", "conv3d", "conv2d", "p3d"],
           "weights": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 0.5, 0.5]]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    g = load_genotype(tmp_path / "old.json")
    assert g["space"] == "level" and g["encoder"] == [["p3d"], ["conv2d"], ["conv3d"]]
    assert g["decoder"] == [["p3d"], ["conv2d"]] and g["weights"][3] == [0, 0.5, 0.5]  # full resolution first
    model = build_model("vnas", preset="tiny", genotype=old)
    keys = set(model.state_dict())  # the first release's state-dict keys: checkpoints trained then still load
    assert {"encoder.stages.0.0.0.weight", "encoder.stages.0.0.1.weight", "encoder.stages.1.0.weight"} <= keys
    assert kernels(model.decoder.stages[1]) == [(3, 3, 1), (1, 1, 3)] * 2  # decoder full resolution: p3d


def test_genotype_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="encoder level 1 has unknown op 'conv4d'"):
        validate_genotype({"space": "layer", "encoder": [["conv3d"] * 2, ["conv4d"] * 2], "decoder": [["p3d"] * 2]})
    with pytest.raises(ConfigError, match="two ops per residual block"):
        validate_genotype({"space": "layer", "encoder": [["conv3d"], ["p3d"]], "decoder": [["p3d"]]})
    with pytest.raises(ConfigError, match="unknown search space 'cell'"):
        validate_genotype({"space": "cell", "encoder": [["conv3d"]], "decoder": []})
    with pytest.raises(ConfigError, match="format 3 is not understood"):
        validate_genotype({"format": 3, "space": "layer", "encoder": [], "decoder": []})
    two_levels = {"space": "layer", "encoder": [["conv3d"] * 2] * 2, "decoder": [["conv3d"] * 2]}
    with pytest.raises(ConfigError, match="genotype has 2 levels, the network 3"):
        build_model("vnas", preset="tiny", genotype=two_levels)
    with pytest.raises(ConfigError, match=r"pass blocks=\[1, 1\] decoder_blocks=\[1\]"):
        build_model("vnas", preset="tiny", genotype=two_levels, blocks=2, **SMALL)
    with pytest.raises(ConfigError, match="pass the dict"):
        build_model("vnas", preset="tiny", genotype="genotype.json")
    (tmp_path / "bad.json").write_text("{cells: ")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_genotype(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        load_genotype(tmp_path / "missing.json")


def write_raw_dataset(root, n=2):
    for i in range(n):
        vols, label = tiny_volumes(seed=i)
        case = root / f"BraTS2021_0000{i}"
        for name, v in vols.items():
            write_nifti(case / f"{case.name}_{name}.nii.gz", v)
        write_nifti(case / f"{case.name}_seg.nii.gz", label)
    return root


def test_search_and_train_take_the_same_raw_dataset_through_the_cli(tmp_path, capsys):
    """``brats-seg search`` reads a raw dataset folder as ``brats-seg train`` does (preprocessed into RUN/cache
    by the trainer's own data preparation); the genotype it writes trains with ``train --genotype``."""
    raw = write_raw_dataset(tmp_path / "raw")
    run = tmp_path / "search"
    args = ["search", str(raw), "--out", str(run), "--epochs", "2", "--warmup", "1", "--steps", "1", "--patch", "16",
            "--batch-size", "1", "--threads", "1", "--no-progress"]
    assert main(args) == 0
    assert "genotype: layer space; encoder" in capsys.readouterr().out
    assert (run / "cache" / "dataset.json").is_file() and len(list((run / "cache").glob("*_image.npy"))) == 2
    halves = json.loads((run / "splits.json").read_text())["splits"][0]
    assert halves == {"train": ["BraTS2021_00000"], "val": ["BraTS2021_00001"]}  # weight half, architecture half
    genotype = load_genotype(run / "genotype.json")
    assert genotype["space"] == "layer" and len(layer_ops(genotype)) == 10
    assert main(["search", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s2")]) == 2
    assert "nowhere: data folder not found" in capsys.readouterr().err
    train = ["train", str(raw), "--out", str(tmp_path / "train"), "--genotype", str(run / "genotype.json"),
             "--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "1", "--patch", "16", "--batch-size", "1",
             "--folds", "1", "--workers", "0", "--threads", "1", "--no-progress"]
    assert main(train) == 0
    from brats_seg.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(tmp_path / "train" / "checkpoints" / "last.pt")
    assert ckpt["model"]["name"] == "vnas" and ckpt["model"]["kwargs"]["genotype"]["encoder"] == genotype["encoder"]
    assert model_from_checkpoint(ckpt).genotype == genotype


def test_vnas_trains_with_the_trainer_and_rebuilds_from_checkpoint(tmp_path):
    """A genotype goes in as a plain model argument, lands in the checkpoint, and rebuilds the network."""
    from brats_seg.checkpoint import load_checkpoint, model_from_checkpoint
    from brats_seg.training.trainer import TrainConfig, train

    write_raw_dataset(tmp_path / "data")
    genotype = {"cells": ["p3d", "conv2d", "conv3d", "conv2d", "p3d"]}  # format 1 (level space)
    summary = train(TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), model="vnas", preset="tiny",
                                model_kwargs={"genotype": genotype}, epochs=2, steps_per_epoch=2, patch=(16, 16, 16),
                                batch_size=2, workers=0, folds=2, progress=False, augment=False))
    assert len(summary["history"]) == 2
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["model"]["name"] == "vnas" and ckpt["model"]["kwargs"]["genotype"]["cells"] == genotype["cells"]
    model = model_from_checkpoint(ckpt)
    assert model.genotype == validate_genotype(genotype)


# --------------------------------------------------------------------------- the search finds the right answer


def shifted_sign_task(axis: int, *, n: int = 4, size: int = 20, k: int = 2, seed: int = 0):
    """Pairs whose label is the sign of the voxel ``k`` steps further along ``axis`` of a random N(0, 1) volume
    (one channel; the three regions equal). ``axis=3`` (through-plane): a voxel's label lies two slices away,
    out of reach of 2-D ops. ``axis=1`` (in-plane): purely slice-wise, every slice stands alone."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        shape = [1, size, size, size]
        shape[axis] += k
        x = rng.normal(size=shape).astype(np.float32)
        label = np.take(x, range(k, shape[axis]), axis=axis) > 0
        pairs.append((np.take(x, range(size), axis=axis), np.repeat(label.astype(np.float32), 3, axis=0)))
    return pairs


def decisive_search(axis: int, seed: int, out) -> dict:
    """A seconds-long search of the paper's space (two levels, one residual block each: 6 searched layers)."""
    return search(shifted_sign_task(axis, seed=seed), out, SearchConfig(
        epochs=8, warmup_epochs=2, steps_per_epoch=16, patch_size=[12, 12, 12], batch_size=2, features=[4, 8],
        strides=[1, 2], blocks=[1, 1], decoder_blocks=[1], lr=0.05, arch_lr=0.1, seed=seed, threads=1),
        progress=False)


def two_d_share(genotype: dict) -> float:
    """Mean softmax weight of the 2-D op over the four full-resolution layers (encoder and decoder level 0)."""
    rows = np.asarray(genotype["weights"])[[0, 1, 4, 5]]  # enc0 b0a, b0b; dec0 b0a, b0b
    return float(rows[:, OP_NAMES.index("conv2d")].mean())


@pytest.mark.slow
def test_search_picks_3d_where_the_third_axis_matters_and_2d_on_a_slice_wise_task(tmp_path):
    """Through-plane task: at least three of the four full-resolution layers pick a 3-D or P3D op (the label two
    slices away needs two z-aware layers in sequence; the residual blocks leave the others free). Slice-wise task:
    both full-resolution encoder layers pick the 2-D op (the decoder's full-resolution layers also read the pooled
    path, whose 2x2x2 max pooling mixes slices). And the 2-D op's weight at full resolution is far higher on the
    slice-wise task than on the through-plane one (seeds 0-9: 0.45-0.76 against 0.10-0.29; 1/3 at start)."""
    z = decisive_search(3, 0, tmp_path / "z")
    z_aware = [op in ("conv3d", "p3d") for op in z["encoder"][0] + z["decoder"][0]]
    assert sum(z_aware) >= 3, z
    inplane = decisive_search(1, 0, tmp_path / "slice")
    assert inplane["encoder"][0] == ["conv2d", "conv2d"], inplane
    assert two_d_share(inplane) - two_d_share(z) > 0.2, (two_d_share(inplane), two_d_share(z))
