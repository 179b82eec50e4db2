"""The steps of the preparation, each a plain function on SimpleITK images.

1. :func:`working_copy`: reorient (exact) to LPS, an isotropic working grid, N4 bias field
   (Tustison et al. 2010) inside a head mask: for registration only, never written;
2. :func:`brain_mask`: brain extraction on the T1c (on a grid of at most 1 mm);
3. :func:`co_register`: rigid, every sequence onto the T1c, over the T1c's brain (dilated);
4. :func:`register_to_atlas`: affine, the skull-stripped T1c onto the MNI template;
5. :func:`to_atlas`: each native image resampled once through its composed transform.
"""

from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk

from ..data.reading.image_io import n4_bias_correction
from .atlas import template
from .brain import BrainExtractor, nonzero_mask
from .registration import Registration, peak_sharpness, register, working_image
from .settings import PrepareConfig
from .spatial_transforms import array_of, atlas_to_source, image_of, resample

MASK_MARGIN_MM = 6.0
"""The registration metric samples the fixed brain mask grown by this much (its edge matters)."""


def orientation(image: sitk.Image) -> str:
    """Three-letter DICOM orientation code of the voxel axes (``LPS``, ``RAS``, ``LIP`` ...)."""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


HEAD_THRESHOLD = 0.05
"""Head (or brain, for stripped data) = above this share of the 99th intensity percentile."""


def head_mask(image: sitk.Image) -> sitk.Image:
    """Voxels above :data:`HEAD_THRESHOLD` of the bright end, largest component, holes filled (uint8).
    (Otsu's threshold would cut into the brain of skull-stripped data, whose background is 0.)"""
    array = sitk.GetArrayViewFromImage(image)
    values = array[array > array.min()]
    level = HEAD_THRESHOLD * float(np.percentile(values, 99)) if values.size else 0.0
    fg = sitk.Cast(image > max(level, float(array.min())), sitk.sitkUInt8)
    components = sitk.RelabelComponent(sitk.ConnectedComponent(fg), sortByObjectSize=True)
    return sitk.BinaryFillhole(sitk.Cast(components == 1, sitk.sitkUInt8))


def working_copy(image: sitk.Image, cfg: PrepareConfig) -> sitk.Image:
    """Reoriented to LPS, on a ``cfg.working_mm`` grid, N4-corrected inside the head (zero outside)."""
    work = working_image(sitk.DICOMOrient(image, "LPS"), cfg.working_mm)
    mask = head_mask(work)
    if not cfg.n4:
        return image_of(array_of(work) * array_of(mask), work)
    corrected = n4_bias_correction(array_of(work), array_of(mask).astype(bool), shrink=cfg.n4_shrink)
    return image_of(corrected, work)


def on_grid(mask: sitk.Image, grid: sitk.Image, transform: sitk.Transform | None = None) -> sitk.Image:
    """A binary mask on another grid (linear interpolation, kept above 0.5), uint8."""
    moved = resample(sitk.Cast(mask, sitk.sitkFloat32), grid, transform or sitk.Transform())
    return sitk.Cast(moved > 0.5, sitk.sitkUInt8)


def brain_mask(t1c: sitk.Image, extractor: BrainExtractor) -> sitk.Image:
    """The brain mask of the native T1c (uint8), on the T1c's grid, or on a 1 mm grid when the
    T1c's voxels are coarser (the mask's edge would otherwise follow thick slices)."""
    if extractor.name == "none":
        return nonzero_mask(t1c)
    grid = t1c if max(t1c.GetSpacing()) <= 1.2 else working_image(t1c, 1.0)
    return extractor.run(grid)


def grown_mask(mask: sitk.Image) -> sitk.Image:
    radius = [max(1, int(round(MASK_MARGIN_MM / s))) for s in mask.GetSpacing()]
    return sitk.BinaryDilate(mask, radius)


def co_register(t1c: sitk.Image, moving: sitk.Image, brain: sitk.Image,
                cfg: PrepareConfig) -> tuple[Registration, tuple[float, float]]:
    """Rigid registration of a working sequence onto the working T1c; and ``(NMI, sharpness)``
    over the brain (grown by :data:`MASK_MARGIN_MM`), see :func:`~.registration.peak_sharpness`."""
    mask = on_grid(brain, t1c)
    grown = grown_mask(mask)
    reg = register(t1c, moving, cfg.rigid, kind="rigid", fixed_mask=grown)
    return reg, peak_sharpness(t1c, moving, reg.transform, grown)


@functools.lru_cache(maxsize=2)
def template_working(spacing_mm: float) -> sitk.Image:
    """The template on the working grid (cached per process)."""
    return working_image(template(), spacing_mm)


def register_to_atlas(t1c: sitk.Image, brain: sitk.Image,
                      cfg: PrepareConfig) -> tuple[Registration, tuple[float, float]]:
    """Affine registration of the skull-stripped working T1c onto the template (working grid);
    and ``(NMI, sharpness)`` over the template's brain (grown)."""
    atlas = template_working(cfg.working_mm)
    atlas_brain = sitk.Cast(atlas > 0, sitk.sitkUInt8)
    stripped = image_of(array_of(t1c) * array_of(on_grid(brain, t1c)), t1c)
    grown = grown_mask(atlas_brain)
    reg = register(atlas, stripped, cfg.affine, kind="affine", fixed_mask=grown)
    return reg, peak_sharpness(atlas, stripped, reg.transform, grown)


def to_atlas(native: dict[str, sitk.Image], brain: sitk.Image, atlas: sitk.Transform, rigid: dict[str, sitk.Transform],
             grid: sitk.Image, interpolation: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every native image on the atlas ``grid`` in one interpolation (atlas -> T1c -> sequence),
    zero outside the brain mask; and that mask. Arrays ``(X, Y, Z)`` float32 / bool."""
    mask = array_of(on_grid(brain, grid, atlas)).astype(bool)
    images = {}
    for m, image in native.items():
        moved = array_of(resample(image, grid, atlas_to_source(atlas, rigid.get(m)), interpolation))
        images[m] = np.where(mask, moved, 0).astype(np.float32)
    return images, mask
