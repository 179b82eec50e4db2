"""`brats-seg synth`, then `check`, then `preprocess` through the real entry point."""

from __future__ import annotations

import json

import numpy as np

from brats_seg.cli import main


def test_synth_check_preprocess(tmp_path, capsys):
    data, cache = tmp_path / "data", tmp_path / "cache"
    assert main(["synth", str(data), "--cases", "3", "--layout", "brats2023", "--seed", "7",
                 "--spacing", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 brats2023 cases (60x60x39 at 4 mm" in out and "s/case to generate" in out
    assert main(["check", str(data)]) == 0

    args = ["preprocess", str(data), str(cache), "--quiet", "--workers", "1"]
    assert main(args + ["--spacing", "8", "8", "8"]) == 0
    assert "3 preprocessed, 0 up to date (skipped), 0 failed" in capsys.readouterr().out
    props = json.loads((cache / "BraTS-SYNTH-00007-000.json").read_text())
    assert props["label_scheme"] == "brats2023" and props["target_spacing"] == [8.0, 8.0, 8.0]
    assert all(abs(s - 8.0) < 0.5 for s in props["spacing"])
    image = np.load(cache / "BraTS-SYNTH-00007-000_image.npy", mmap_mode="r")
    assert image.shape[0] == 4 and image.shape[1:] == tuple(props["shape"])
    assert main(args + ["--spacing", "8", "8", "8"]) == 0
    assert "0 preprocessed, 3 up to date (skipped)" in capsys.readouterr().out

    # a corrupt case: exit 1, the others done, the failure named on stderr
    bad = data / "BraTS-SYNTH-00008-000" / "BraTS-SYNTH-00008-000-t1c.nii.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    assert main(args + ["--normalization", "percentile", "--no-crop"]) == 1
    captured = capsys.readouterr()
    assert "2 preprocessed, 0 up to date (skipped), 1 failed" in captured.out
    assert "failed: case BraTS-SYNTH-00008-000: BraTS-SYNTH-00008-000-t1c.nii.gz: corrupt or truncated" in captured.err
    assert not list(cache.glob("BraTS-SYNTH-00008-000*"))
    assert json.loads((cache / "BraTS-SYNTH-00007-000.json").read_text())["shape"] == [60, 60, 39]  # --no-crop


def test_bad_input_exit_2(tmp_path, capsys):
    assert main(["preprocess", str(tmp_path / "missing"), str(tmp_path / "cache")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "x"), "--cases", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
