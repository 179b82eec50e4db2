"""Per-case intensity statistics and the far-outside rule: on the real shared cases (none far outside a
range made from them all), on a shared case scaled tenfold (far outside), through check and predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_seg.checkpoint import make_checkpoint, save_checkpoint
from brats_seg.cli import main
from brats_seg.data.reading.intensity import far_outside, intensity_stats, training_range
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_cli_predict import tiny_checkpoint  # noqa: E402

SITES = ("brats2018", "brats2021", "brats2023", "brats-gli", "ssa")
CASE = "BraTS2021_00002"


@pytest.fixture(scope="module")
def shared_stats(shared_data):
    """case id -> intensity_stats of every shared labelled case (about 10 s on 2 cores)."""
    return {c.case_id: intensity_stats(*(lambda v: (v.image, v.channels))(load_case(c, with_label=False)))
            for site in SITES for c in discover_cases(shared_data / site)}


def test_known_statistics():
    image = np.zeros((2, 10, 10, 10), np.float32)
    image[0, 2:8, 2:8, 2:8] = np.arange(216).reshape(6, 6, 6) + 1  # 1..216 inside the brain
    image[1, 2:8, 2:8, 2:8] = 5.0
    stats = intensity_stats(image, ("t1c", "t2f"))
    assert stats["t1c"]["p50"] == 108.5 and stats["t1c"]["voxels"] == 216 and stats["t1c"]["mean"] == 108.5
    assert stats["t2f"]["std"] == 0.0 and stats["t2f"]["z_p99"] == 0.0


def test_rule_on_the_shared_cases(shared_stats):
    ranges = training_range(list(shared_stats.values()))
    assert ranges["cases"] == 22
    assert all(far_outside(s, ranges) == [] for s in shared_stats.values())
    scaled = {c: {**s, **{k: s[k] * 10 for k in ("p1", "p50", "p99", "mean", "std")}}
              for c, s in shared_stats[CASE].items()}
    assert far_outside(scaled, ranges)
    assert training_range([shared_stats[CASE], {}]) is None  # a case without statistics: no range at all


def _cropped_copy(shared_data: Path, out: Path, scale: float) -> Path:
    """The BraTS 2021 case cropped to 96 x 96 x 64 around its centre, intensities times ``scale``."""
    src = shared_data / "brats2021" / CASE
    for f in src.glob("*.nii.gz"):
        img = nib.load(f)
        data = np.asanyarray(img.dataobj)[72:168, 72:168, 45:109]
        if not f.name.endswith("_seg.nii.gz"):
            data = data.astype(np.float32) * scale
        nib.save(nib.Nifti1Image(data, img.affine), out / CASE / f.name)
    return out / CASE


@pytest.fixture(scope="module")
def cases(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("intensity")
    (root / "plain" / CASE).mkdir(parents=True)
    (root / "scaled" / CASE).mkdir(parents=True)
    return _cropped_copy(shared_data, root / "plain", 1.0), _cropped_copy(shared_data, root / "scaled", 10.0)


def test_check_json_reports_statistics_and_compares(cases, shared_stats, tmp_path, capsys):
    plain, scaled = cases
    assert main(["check", str(plain), "--json", "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert set(record["intensity"]) == {"t1n", "t1c", "t2w", "t2f"}
    assert {"p1", "p50", "p99", "mean", "std", "z_p1", "z_p99"} <= set(record["intensity"]["t2f"])
    ckpt = save_checkpoint(make_checkpoint(torch_net(), model_name="nnunet", model_kwargs=NET_KWARGS,
                                           intensity_range=training_range(list(shared_stats.values()))),
                           tmp_path / "ranged.pt")
    assert main(["check", str(scaled), "--json", "--no-progress", "--model", str(ckpt)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["far_outside"]
    assert main(["check", str(plain), "--no-progress", "--model", str(ckpt)]) == 0
    assert "far outside" not in capsys.readouterr().out


NET_KWARGS = {"preset": "tiny", "features": [2, 4], "strides": [1, 2]}


def torch_net():
    from brats_seg.models.registry import build_model

    return build_model("nnunet", **NET_KWARGS)


def test_predict_warns_on_the_scaled_case_only(cases, shared_stats, tmp_path, capsys):
    plain, scaled = cases
    ranged = tmp_path / "ranged.pt"
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", patch=(32, 32, 32))
    import torch

    raw = torch.load(ckpt, weights_only=True)
    raw["intensity_range"] = training_range(list(shared_stats.values()))
    torch.save(raw, ranged)
    for case, warned in ((plain, False), (scaled, True)):
        out = tmp_path / f"out_{warned}"
        assert main(["predict", str(case), "--model", str(ranged), "--out", str(out), "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert ("intensities far outside the training cases'" in err) is warned, err
        sidecar = json.loads((out / f"{CASE}.json").read_text())
        assert bool(sidecar["intensity"]["far_outside"]) is warned and sidecar["intensity"]["compared"]
    # an older checkpoint without a range: no warning, said once
    assert main(["predict", str(scaled), "--model", str(ckpt), "--out", str(tmp_path / "old"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("no training intensity range") == 1 and "far outside" not in err
