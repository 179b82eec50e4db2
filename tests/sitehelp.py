"""Real shared cases cropped small, for the new-site tests (fine-tuning, TENT, the site experiment)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


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
