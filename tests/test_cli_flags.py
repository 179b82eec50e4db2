"""Every command that reads a dataset takes ``--layout``, every command that reads label maps takes
``--label-scheme``, and an error that names a flag names one its command has (issue 23)."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import numpy as np

from brats_seg.cli import COMMANDS, _command_parser, main
from helpers import write_dataset, write_nifti

CLI = Path(__file__).resolve().parents[1] / "brats_seg" / "cli"
READS_DATASETS = ("check", "preprocess", "train", "pretrain", "search", "predict", "evaluate", "show", "quickstart",
                  "experiment")
READS_LABEL_MAPS = READS_DATASETS
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _options(name: str) -> set[str]:
    return set(_command_parser(name)[0]._option_string_actions)


def test_dataset_commands_take_layout_and_label_scheme():
    missing = [f"{n}: {flag}" for n in READS_DATASETS for flag in ("--layout",) if flag not in _options(n)]
    missing += [f"{n}: --label-scheme" for n in READS_LABEL_MAPS if "--label-scheme" not in _options(n)]
    assert not missing, missing


def test_flags_named_in_each_commands_errors_are_its_own():
    """Every ``--flag`` in a string of a ``raise`` in ``brats_seg/cli/<command>.py`` is one of that command's."""
    wrong = []
    for name in COMMANDS:
        tree = ast.parse((CLI / f"{name}.py").read_text(encoding="utf-8"))
        options = _options(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise):
                for const in ast.walk(node):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        wrong += [f"{name}: {f}" for f in FLAG.findall(const.value) if f not in options]
    assert not wrong, wrong


def _ped_dataset(root: Path, labeled: bool = True) -> Path:
    """One BraTS-PED case holding labels 0-3 only: 1 is NETC (brats2023) or ET (brats2024-ped)."""
    src = write_dataset(root / "gli", "brats2023", labeled=labeled)
    case = "BraTS-PED-00001-000"
    for f in (src / "BraTS-GLI-00001-000").iterdir():
        write_nifti(root / "ped" / case / f.name.replace("BraTS-GLI-00001-000", case),
                    np.asarray(__import__("nibabel").load(f).dataobj))
    shutil.rmtree(src)
    return root / "ped"


def test_an_ambiguous_label_set_names_the_flag_and_the_flag_settles_it(tmp_path, capsys):
    data = _ped_dataset(tmp_path)
    assert main(["preprocess", str(data), str(tmp_path / "cache"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ambiguous" in err and "(--label-scheme)" in err
    assert main(["preprocess", str(data), str(tmp_path / "cache"), "--quiet", "--label-scheme", "brats2024-ped"]) == 0
    cached = json.loads((tmp_path / "cache" / "BraTS-PED-00001-000.json").read_text())
    assert cached["label_scheme"] == "brats2024-ped"
    case = data / "BraTS-PED-00001-000"
    assert main(["show", str(case), "--out", str(tmp_path / "a.png")]) == 2
    assert "(--label-scheme)" in capsys.readouterr().err
    assert main(["show", str(case), "--out", str(tmp_path / "a.png"), "--label-scheme", "brats2023"]) == 0


def test_show_reads_the_scheme_segment_or_predict_recorded(tmp_path, capsys):
    """The toolkit's own output is not ambiguous to it: ``show`` takes the scheme recorded beside ``--pred``."""
    data = _ped_dataset(tmp_path, labeled=False)
    case = data / "BraTS-PED-00001-000"
    labels = np.zeros((16, 16, 16), np.uint8)
    labels[4:10, 4:10, 4:10], labels[6:8, 6:8, 6:8] = 2, 1
    pred = write_nifti(tmp_path / "seg" / "segmentation" / "labels_in_atlas_space.nii.gz", labels)
    assert main(["show", str(case), "--pred", str(pred), "--out", str(tmp_path / "a.png")]) == 2
    assert "(--label-scheme)" in capsys.readouterr().err
    (pred.parent / "segment.json").write_text(json.dumps({"label_scheme": "brats2024-ped"}))
    assert main(["show", str(case), "--pred", str(pred), "--out", str(tmp_path / "a.png")]) == 0
    other = write_nifti(tmp_path / "preds" / "BraTS-PED-00001-000.nii.gz", labels)
    (other.parent / "BraTS-PED-00001-000.json").write_text(json.dumps({"label_scheme": "brats2023"}))
    assert main(["show", str(case), "--pred", str(other), "--out", str(tmp_path / "b.png")]) == 0


def test_search_names_the_flags_of_its_warm_up(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", "brats2021", n_cases=2)
    assert main(["search", str(data), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--warmup" in err and "--epochs" in err


def test_experiment_reads_its_data_with_the_stated_layout_and_scheme(tmp_path, monkeypatch):
    """``experiment --layout/--label-scheme`` reach the preset's DataPlan (the run itself is the smoke test's)."""
    import brats_seg.experiments.architectures as arch
    from brats_seg.experiments.catalog import run_experiment

    seen = {}
    monkeypatch.setattr(arch, "run", lambda data, out, **kw: seen.update(kw) or {})
    run_experiment("architectures", None, tmp_path, "smoke", layout="brats2023", label_scheme="brats2024-ped")
    assert (seen["config"].data.layout, seen["config"].data.label_scheme) == ("brats2023", "brats2024-ped")
    assert seen["config"].data.n_test == arch.PRESETS["smoke"].data.n_test  # the rest is the preset's
