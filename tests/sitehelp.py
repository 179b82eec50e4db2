"""Real shared cases cropped small, for the new-site tests (fine-tuning, TENT, the site experiment), and a
spy on a run's first training step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from brats_seg.training import trainer
from brats_seg.training.loop import _forward_loss


def crop_cases(shared_data: Path, site: str, n: int, out: Path, size: int = 40) -> Path:
    """The first ``n`` cases of ``site`` cropped to ``size``^3 around their tumour's centre (labels kept)."""
    for case in sorted((shared_data / site).iterdir())[:n]:
        seg = next(case.glob("*seg.nii.gz"))
        centre = np.round(np.argwhere(np.asanyarray(nib.load(seg).dataobj) > 0).mean(0)).astype(int)
        lo = [int(np.clip(c - size // 2, 0, s - size)) for c, s in zip(centre, nib.load(seg).shape)]
        box = tuple(slice(a, a + size) for a in lo)
        for f in case.glob("*.nii.gz"):
            img = nib.load(f)
            (out / case.name).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[box], img.affine, img.header), out / case.name / f.name)
    return out


def first_step_losses(monkeypatch, source_network: Callable[[], torch.nn.Module]) -> dict:
    """Spy on the run's first epoch: ``"source"``, the source network's loss on the first batch before any
    update, and ``"run"``, the run's loss on that batch (filled in when the run trains)."""
    first = {}
    original = trainer.train_one_epoch

    def spy(net, batches, loss_fn, optimizer, settings, **kw):
        if "source" not in first:
            batch = next(iter(batches))
            src = source_network().train()
            first["source"] = float(_forward_loss(src, batch["image"], batch["label"], loss_fn, settings.device,
                                                  settings.amp).detach())
            stats = original(net, [batch], loss_fn, optimizer, settings, **kw)
            first["run"] = stats.loss
            return stats
        return original(net, batches, loss_fn, optimizer, settings, **kw)

    monkeypatch.setattr(trainer, "train_one_epoch", spy)
    return first
