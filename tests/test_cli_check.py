"""``brats-seg check`` through ``brats_seg.cli.main`` and through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brats_seg.cli import main
from brats_seg.conventions import LABEL_SCHEMES
from helpers import write_dataset

KEYS = ["case", "ok", "layout", "label_scheme", "modalities", "shape", "errors", "missing", "findings", "intensity"]


def test_real_brats2018_json(shared_data, capsys):
    assert main(["check", str(shared_data / "brats2018"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 4
    for rec in out:
        assert list(rec) == KEYS
        assert rec["ok"] is True and rec["label_scheme"] == "brats2021" and rec["layout"] == "brats2021"
        assert rec["modalities"] == ["t1n", "t1c", "t2w", "t2f"] and rec["shape"] == [240, 240, 155]
        assert rec["errors"] == []


def test_real_brats_gli_table(shared_data, capsys):
    assert main(["check", str(shared_data / "brats-gli")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["case", "status", "layout", "scheme", "modalities", "shape", "errors"]
    assert lines[1].split() == ["BraTS-GLI-00000-000", "ok", "brats2023", "brats2023", "t1n,t1c,t2w,t2f", "182x218x182"]
    assert lines[-1] == "1 case: 1 valid, 0 invalid"


def test_invalid_case_exits_1_and_lists_every_error(tmp_path, capsys):
    root = write_dataset(tmp_path / "ds", "brats2021", n_cases=2)
    (root / "BraTS2021_00002" / "BraTS2021_00002_t1ce.nii.gz").unlink()
    (root / "BraTS2021_00002" / "BraTS2021_00002_flair.nii.gz").write_bytes(b"garbage")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    rows = out.splitlines()
    assert rows[1].split()[:2] == ["BraTS2021_00001", "ok"]
    assert rows[2].split()[:2] == ["BraTS2021_00002", "FAIL"] and "missing modality t1c" in rows[2]
    assert rows[3].strip().startswith("BraTS2021_00002_flair.nii.gz: corrupt or truncated file")
    assert rows[-1] == "2 cases: 1 valid, 1 invalid"
    assert main(["check", str(root), "--json"]) == 1
    recs = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in recs] == [True, False] and len(recs[1]["errors"]) == 2


def test_forced_layout_and_scheme(tmp_path, capsys):
    root = write_dataset(tmp_path / "msd", "msd")
    assert main(["check", str(root), "--layout", "msd", "--label-scheme", "msd", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label_scheme"] == "msd"
    assert main(["check", str(root), "--label-scheme", "brats2023", "--json"]) == 0  # msd's values fit brats2023 too
    assert main(["check", str(root), "--label-scheme", "brats2021", "--json"]) == 1
    assert "outside scheme brats2021" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"brats-seg check: error: {tmp_path / 'nowhere'}: no such file or folder\n"
    root = write_dataset(tmp_path / "ds", "brats2021")
    for args, message in ((["--layout", "bids"], "unknown layout 'bids'"),
                          (["--label-scheme", "brats2019"], "unknown label scheme 'brats2019'")):
        assert main(["check", str(root), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_console_script_exit_code_and_stderr(tmp_path):
    script = Path(sys.executable).with_name("brats-seg")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "brats_seg.cli"]
    proc = subprocess.run([*cmd, "check", str(tmp_path / "nowhere"), "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"brats-seg check: error: {tmp_path / 'nowhere'}: no such file or folder\n"
    proc = subprocess.run([sys.executable, "-m", "brats_seg.cli", "check", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "no recognisable cases" in proc.stderr


def test_progress_bar_on_stderr_for_many_cases(tmp_path, capsys):
    root = write_dataset(tmp_path / "ds", "nnunet", n_cases=5)
    assert main(["check", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 5  # stdout stays pure JSON
    assert "check" in captured.err and "5/5" in captured.err
    assert main(["check", str(root), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_help_lists_every_label_scheme(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no scheme name is wrapped at its hyphen
    with pytest.raises(SystemExit) as done:
        main(["check", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LABEL_SCHEMES), out
