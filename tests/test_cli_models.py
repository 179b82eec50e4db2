"""The ``brats-seg models`` and ``brats-seg search`` commands through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brats_seg.cli import main
from brats_seg.models.nas.genotype import layer_ops, load_genotype
from brats_seg.models.registry import list_models
from helpers import write_cache_entries


def test_models_json_lists_all_with_parameters(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_models() and len(rows) == 8
    by_name = {r["name"]: r for r in rows}
    assert 25e6 < by_name["nnunet"]["parameters"] < 40e6, "nnU-Net BraTS config is ~31M parameters"
    assert by_name["nnunet"]["deep_supervision"] and not by_name["segresnet"]["deep_supervision"]
    for r in rows:
        assert r["parameters"] > 1e6 and r["gflops"] > 10 and r["paper"] and r["patch"] == [128, 128, 128]


def test_models_table(capsys):
    assert main(["models", "--preset", "tiny", "--patch", "32"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_models()) and "4x32^3" in out


def write_cache(folder, n=2, size=20):
    """A preprocessing cache (brats_seg.data.preprocessing.cache): <id>_image.npy, <id>_label.npy, <id>.json,
    dataset.json."""
    cases = {}
    for i in range(n):
        rng = np.random.default_rng(i)
        label = np.zeros((size,) * 3, np.uint8)
        label[4:14, 4:14, 4:14] = 2
        label[6:12, 6:12, 6:12] = 1
        label[8:10, 8:10, 8:10] = 4
        image = rng.normal(size=(4, *label.shape)).astype(np.float32) + (label > 0)
        cases[f"case{i}"] = (image, label, "brats2021")
    write_cache_entries(folder, cases)
    return folder


def test_search_command_on_a_cache(tmp_path, capsys):
    cache = write_cache(tmp_path / "cache")
    run = tmp_path / "run"
    args = ["search", str(cache), "--out", str(run), "--epochs", "1", "--steps", "1", "--patch", "16",
            "--no-progress", "--arch-lr", "0.1", "--warmup", "0"]
    assert main(args) == 0
    genotype = load_genotype(run / "genotype.json")
    assert len(layer_ops(genotype)) == 10 and "genotype:" in capsys.readouterr().out  # tiny: 5 levels x 2 layers
    assert (run / "arch_log.csv").read_text().count("\n") == 2
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # never overwrites a search silently
    assert main([*args[:5], "2", *args[6:], "--resume"]) == 0
    assert (run / "arch_log.csv").read_text().count("\n") == 3
    assert main(["search", str(cache), "--out", str(tmp_path / "r2"), "--patch", "18"]) == 2
    assert "multiple of 4" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["models", "--json", "--preset", "tiny", "--patch", "32"], ["--help"]])
def test_closed_stdout_pipe_ends_quietly(argv):
    """`brats-seg models --json | head`: the reader is gone before the output is written. No traceback, for any
    command (the CLI entry handles it); exit 141 like a Unix tool ended by SIGPIPE."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "brats_seg.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait() in (0, 141, 2), err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    if argv[0] == "models":
        assert proc.returncode == 141
