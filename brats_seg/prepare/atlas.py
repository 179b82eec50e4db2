"""The atlas: the MNI ICBM152 2009a template that ships in nilearn's wheel, and the output grid.

Template: ``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz`` (Fonov et al., NeuroImage
2011; T1-weighted, brain-masked, 197x233x189 at 1 mm), found by the same loader the
synthetic data use (:func:`brats_seg.data.synth.template_dir`); nothing is downloaded.
The T1c is registered to it; every image is then written on :data:`ATLAS_GRID`, the
1 mm MNI grid of BraTS 2024+ files (182x218x182, the grid of the shared BraTS-GLI case),
so prepared cases have the shape and frame those models expect.
"""

from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk

from ..data.reading.image_io import Image, read_image
from ..data.synth import template_dir
from .sitk_images import to_sitk

TEMPLATE_T1 = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
"""The T1 template's file in :func:`~brats_seg.data.synth.template_dir` (the synthetic data's loader)."""
ATLAS_NAME = "MNI ICBM152 2009a nonlinear symmetric T1 (Fonov et al. 2011), from nilearn's wheel"
ATLAS_SHAPE = (182, 218, 182)
ATLAS_AFFINE = np.array([[-1.0, 0, 0, 90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]])
"""1 mm, voxel axes towards L, A, S: the grid of BraTS 2024+ (MNI-frame) files."""


@functools.lru_cache(maxsize=1)
def atlas_grid() -> sitk.Image:
    """An empty (zero) float32 image on the output grid (one per process: do not modify it)."""
    return to_sitk(Image(np.zeros(ATLAS_SHAPE, np.float32), ATLAS_AFFINE), name="atlas grid")


@functools.lru_cache(maxsize=1)
def _template() -> tuple[np.ndarray, np.ndarray]:
    image = read_image(template_dir() / TEMPLATE_T1)
    return image.array, image.affine


def template() -> sitk.Image:
    """The T1 template (brain-masked, zero outside the brain) as a float32 SimpleITK image."""
    array, affine = _template()
    return to_sitk(Image(array, affine), name="MNI template")
