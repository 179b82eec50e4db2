"""A MONAI bundle in the ``brats_mri_segmentation`` form (configs/metadata.json, configs/inference.json,
models/model.pt), written here with a small SegResNet and spread-out weights: our labels equal those of
MONAI's own pipeline built from the bundle's config (its preprocessing, inferer, sigmoid, threshold and
write-back 4 > 1 > 2), on crops of two real cases; and the refusals, through the CLI."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from bundle_folder import INFERENCE, METADATA, monai_labels, write_bundle

from brats_seg.cli import main
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.inference.predictor import Predictor

pytestmark = pytest.mark.realdata

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("bundle"))


def test_labels_equal_monai_pipeline(bundle, crops):
    predictor = Predictor([bundle], device="cpu")
    for case_id, (case_dir, _) in crops.items():
        (case,) = [c for c in discover_cases(case_dir.parent) if c.case_id == case_id]
        ours = predictor.predict(load_case(case), label_scheme="brats2021").labels
        theirs = monai_labels(bundle, case_dir)
        assert len(np.unique(theirs)) >= 3
        for region, values in {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}.items():
            a, b = np.isin(ours, values), np.isin(theirs, values)
            assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.999, (case_id, region, int((a != b).sum()))


def test_import_and_refusals(bundle, crops, tmp_path, capsys):
    assert main(["models", "import", str(bundle), "--out", str(tmp_path / "m.pt")]) == 0
    case_dir = crops["BraTS2021_00002"][0]
    for model, name in ((bundle, "a"), (tmp_path / "m.pt", "b")):
        assert main(["predict", str(case_dir), "--model", str(model), "--out", str(tmp_path / name),
                     "--no-progress"]) == 0
    a, b = (nib.load(tmp_path / n / "BraTS2021_00002.nii.gz").get_fdata() for n in "ab")
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1, 2, 4} and len(np.unique(a)) >= 3
    bad = tmp_path / "bad" / bundle.name
    shutil.copytree(bundle, bad)
    config = dict(INFERENCE, network_def={**INFERENCE["network_def"], "_target_": "NoSuchNet"})
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    capsys.readouterr()
    for argv, words in [
        (["models", "import", str(bad), "--out", str(tmp_path / "x.pt")], ("network_def does not build",)),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    config = dict(INFERENCE, network_def={**INFERENCE["network_def"], "init_filters": "$__import__('os')"})
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    assert main(["models", "import", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "only plain values" in capsys.readouterr().err
    steps = INFERENCE["preprocessing"]["transforms"]
    config = dict(INFERENCE, preprocessing={"_target_": "Compose", "transforms": [
        steps[0], {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"}, steps[1]]})
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    assert main(["models", "import", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "Orientationd" in capsys.readouterr().err
    (bad / "configs" / "inference.json").write_text(json.dumps(INFERENCE))
    (bad / "models" / "model.pt").rename(bad / "models" / "model.ts")
    assert main(["models", "import", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "model.pt: missing (model.ts, TorchScript, is not read" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_channels_from_the_known_bundle_table_or_refused(bundle, tmp_path, capsys):
    """A bundle that names its inputs only in prose: the table of published bundles (brats_mri_segmentation:
    T1c, T1, T2, FLAIR) names them; another bundle is refused until --channels names them."""
    from brats_seg.checkpoint import load_checkpoint

    prose = tmp_path / "a" / bundle.name
    shutil.copytree(bundle, prose)
    metadata = json.loads(json.dumps(METADATA))
    del metadata["network_data_format"]["inputs"]["image"]["channel_def"]
    (prose / "configs" / "metadata.json").write_text(json.dumps(metadata))
    assert main(["models", "import", str(prose), "--out", str(tmp_path / "m.pt")]) == 0
    assert load_checkpoint(tmp_path / "m.pt")["channels"] == ["t1c", "t1n", "t2w", "t2f"]
    metadata["name"] = "my_bundle"
    (prose / "configs" / "metadata.json").write_text(json.dumps(metadata))
    assert main(["models", "import", str(prose), "--out", str(tmp_path / "n.pt")]) == 2
    assert "name them with --channels" in capsys.readouterr().err
    assert main(["models", "import", str(prose), "--channels", "t2f", "t1c", "t1n", "t2w",
                 "--out", str(tmp_path / "n.pt")]) == 0
    assert load_checkpoint(tmp_path / "n.pt")["channels"] == ["t2f", "t1c", "t1n", "t2w"]
