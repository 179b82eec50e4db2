"""Our predictions of an nnU-Net v2 trained folder equal nnU-Net's own (``nnUNetPredictor`` on CPU).

Two real shared cases, cropped small; PlainConvUNet and ResEnc; regions and softmax labels; one fold
and a two-fold average; mirroring off and on. Agreement: Dice per region >= 0.999 between the two label
maps, against nnU-Net's code with its blending accumulated in float32 as ours is. Stock nnU-Net accumulates
the blended logits and the Gaussian weights in float16: its logits differ from the float32 ones by up to
0.9 (of 47) here, which flips voxels near the threshold; against it we ask Dice >= 0.995 and print the count.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from nnunet_folder import PLAIN, RESENC, write_trained_folder

from brats_seg.conventions import get_scheme
from brats_seg.data.reading.layouts import discover_cases
from brats_seg.data.reading.volumes import load_case
from brats_seg.inference.predictor import Predictor

pytestmark = pytest.mark.realdata

class _Float32Torch(types.ModuleType):
    """``torch`` as nnU-Net's predictor module sees it, with ``torch.half`` meaning float32."""

    def __getattr__(self, name):
        return torch.float32 if name == "half" else getattr(torch, name)


@pytest.fixture
def float32_nnunet(monkeypatch):
    """nnU-Net's predictor with its sliding-window sums (logits, Gaussian weights) in float32."""
    import nnunetv2.inference.predict_from_raw_data as predict_module

    gaussian = predict_module.compute_gaussian
    monkeypatch.setattr(predict_module, "torch", _Float32Torch("torch"))
    monkeypatch.setattr(predict_module, "compute_gaussian",
                        lambda *a, **k: gaussian(*a, **{**k, "dtype": torch.float32}))


def nnunet_labels(folder, files, folds, mirroring) -> np.ndarray:
    """nnU-Net's own labels, in our (nibabel) axis order."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), use_folds=folds, checkpoint_name="checkpoint_final.pth")
    data, props = SimpleITKIO().read_images([str(f) for f in files])
    threads = torch.get_num_threads()
    seg = predictor.predict_single_npy_array(data, props, None, None, False)
    torch.set_num_threads(threads)
    return np.asarray(seg).transpose(2, 1, 0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 if not a.any() and not b.any() else 2 * (a & b).sum() / (a.sum() + b.sum())


CASES = [  # (network, regions, folds, mirroring): every option in at least one run, 2 cases each
    (PLAIN, True, (0,), False),
    (PLAIN, False, (0, 1), True),
    (RESENC, True, (0, 1), False),
    (RESENC, False, (0,), True),
]


@pytest.mark.parametrize("network, regions, folds, mirroring", CASES,
                         ids=["plain-regions-1fold", "plain-labels-2folds-mirror", "resenc-regions-2folds",
                              "resenc-labels-1fold-mirror"])
def test_labels_equal_nnunet(tmp_path, crops, float32_nnunet, network, regions, folds, mirroring):
    folder = write_trained_folder(tmp_path, network=network, regions=regions, folds=folds)
    compare(folder, crops, folds, mirroring, 0.999)


def test_labels_agree_with_stock_nnunet(tmp_path, crops, capsys):
    """Stock nnU-Net (float16 sums): the differences are its rounding; printed with -s."""
    folder = write_trained_folder(tmp_path, network=RESENC, regions=True, folds=(0,))
    for case_id, region, wrong, total in compare(folder, crops, (0,), False, 0.995):
        print(f"{case_id} {region}: {wrong} of {total} voxels differ from stock nnU-Net")


def compare(folder, crops, folds, mirroring, min_dice) -> list[tuple]:
    predictor = Predictor([folder], device="cpu", tta=8 if mirroring else 0, batch_size=2)
    scheme = get_scheme("msd")
    found = []
    for case_id, (case_dir, files) in crops.items():
        (case,) = [c for c in discover_cases(case_dir.parent) if c.case_id == case_id]
        ours = predictor.predict(load_case(case), label_scheme="msd").labels
        theirs = nnunet_labels(folder, files, folds, mirroring)
        assert ours.shape == theirs.shape
        assert len(np.unique(theirs)) >= 3, "the reference should segment several labels"
        for region, values in scheme.regions.items():
            a, b = np.isin(ours, list(values)), np.isin(theirs, list(values))
            found.append((case_id, region, int((a != b).sum()), int(b.sum())))
            assert dice(a, b) >= min_dice, found[-1]
    return found
