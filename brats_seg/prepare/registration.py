"""Registration with SimpleITK: rigid sequence -> T1c, affine T1c -> atlas, and how well each fits.

Both use Mattes mutual information (Mattes et al. 2003; ``bins`` histogram bins, a fixed
random sample of the fixed image's voxels), a regular-step gradient descent with scales
from physical shifts, and a multi-resolution pyramid (``shrink`` factors, Gaussian
``sigmas`` in mm). Rigid and similarity stages start from the better of two initialisations
(centres of intensity mass, centres of the fields of view) judged by the metric at the
coarsest level; the affine stage starts from a similarity registration. Transforms map FIXED physical
points to MOVING physical points (ITK's convention), in LPS millimetres.

The quality figure is normalised mutual information (Studholme et al. 1999),
``NMI = (H(F) + H(M)) / H(F, M)`` over the fixed mask, 64 bins each: 1 for unrelated
images, 2 for identical ones. It does not depend on the optimiser's sampling, so one
threshold serves all cases (:data:`~brats_seg.prepare.settings.MIN_SIMILARITY`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .settings import RegistrationConfig


@dataclass
class Registration:
    """A transform (fixed -> moving points) and what it cost and achieved."""

    transform: sitk.Transform
    metric: float
    """Mattes MI at the end (negative; lower is better; only comparable within one pair)."""
    iterations: int
    init: str
    stop: str


def _method(cfg: RegistrationConfig, fixed: sitk.Image, fixed_mask: sitk.Image | None) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=cfg.bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    voxels = np.prod(fixed.GetSize())
    shares = [min(1.0, cfg.samples * s ** 3 / voxels) for s in cfg.shrink]  # about cfg.samples points per level
    reg.SetMetricSamplingPercentagePerLevel(shares, cfg.seed)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=cfg.step_mm, minStep=cfg.min_step_mm,
                                                 numberOfIterations=cfg.iterations, relaxationFactor=0.5,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(cfg.shrink))
    reg.SetSmoothingSigmasPerLevel(list(cfg.sigmas))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg


def _initial(fixed: sitk.Image, moving: sitk.Image, cfg: RegistrationConfig, fixed_mask,
             transform: sitk.Transform) -> tuple[sitk.Transform, str]:
    """The initialisation (moments or geometry) whose metric is better at the coarsest level."""
    coarse = RegistrationConfig(**{**cfg.__dict__, "shrink": cfg.shrink[:1], "sigmas": cfg.sigmas[:1]})
    best = None
    for name, how in (("moments", sitk.CenteredTransformInitializerFilter.MOMENTS),
                      ("geometry", sitk.CenteredTransformInitializerFilter.GEOMETRY)):
        init = sitk.CenteredTransformInitializer(fixed, moving, transform.__class__(transform), how)
        reg = _method(coarse, fixed, fixed_mask)
        reg.SetInitialTransform(init, inPlace=False)
        value = reg.MetricEvaluate(fixed, moving)
        if best is None or value < best[0]:
            best = (value, init, name)
    return best[1], best[2]


TRANSFORMS = {"rigid": sitk.Euler3DTransform, "similarity": sitk.Similarity3DTransform,
              "affine": sitk.AffineTransform}
_EMPTY = {"rigid": sitk.Euler3DTransform, "similarity": sitk.Similarity3DTransform,
          "affine": lambda: sitk.AffineTransform(3)}
"""Registration kinds: rigid (6 parameters), similarity (7: plus one scale), affine (12)."""
PRE_STAGE = {"affine": "similarity"}
"""Kinds started from a registration of a simpler kind (affine from similarity: one brain onto
the template needs a scale before a rigid pre-stage could converge)."""


def _as(kind: str, transform: sitk.Transform) -> sitk.Transform:
    """``transform`` (of a simpler kind) as a transform of ``kind``, same mapping."""
    out = _EMPTY[kind]()
    if transform.GetName() == out.GetName():
        return TRANSFORMS[kind](transform)
    source = TRANSFORMS["similarity"](transform) if transform.GetName() == "Similarity3DTransform" \
        else sitk.Euler3DTransform(transform)
    out.SetCenter(source.GetCenter())
    out.SetMatrix(source.GetMatrix())
    out.SetTranslation(source.GetTranslation())
    return out


@contextmanager
def threads(n: int) -> Iterator[None]:
    """SimpleITK's default thread count set to ``n`` inside (the registration method's own setting
    does not reach its metric), restored after."""
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def register(fixed: sitk.Image, moving: sitk.Image, cfg: RegistrationConfig, *, kind: str = "rigid",
             fixed_mask: sitk.Image | None = None) -> Registration:
    """Register ``moving`` onto ``fixed`` (both float32 3-D images) with a transform of ``kind``
    (:data:`TRANSFORMS`); kinds in :data:`PRE_STAGE` start from a registration of a simpler kind."""
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown registration kind {kind!r}; valid: {', '.join(TRANSFORMS)}")
    with threads(cfg.threads):
        return _register(fixed, moving, cfg, kind, fixed_mask)


def _register(fixed: sitk.Image, moving: sitk.Image, cfg: RegistrationConfig, kind: str,
              fixed_mask: sitk.Image | None) -> Registration:
    if kind in PRE_STAGE:
        pre = register(fixed, moving, cfg, kind=PRE_STAGE[kind], fixed_mask=fixed_mask)
        init, how = _as(kind, pre.transform), f"{PRE_STAGE[kind]} ({pre.init})"
    else:
        init, how = _initial(fixed, moving, cfg, fixed_mask, _EMPTY[kind]())
    reg = _method(cfg, fixed, fixed_mask)
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform) and out.GetNumberOfTransforms() == 1:
        out = out.GetNthTransform(0)
    return Registration(TRANSFORMS[kind](out), float(reg.GetMetricValue()), int(reg.GetOptimizerIteration()), how,
                        reg.GetOptimizerStopConditionDescription())


def normalized_mutual_information(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform,
                                  mask: sitk.Image, bins: int = 64) -> float:
    """NMI of ``fixed`` and ``moving`` resampled through ``transform``, inside ``mask`` (on
    ``fixed``'s grid) and where ``moving`` has data. Intensities are binned between their
    0.5th and 99.5th percentiles inside the mask."""
    warped = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, np.nan, sitk.sitkFloat32)
    f = sitk.GetArrayViewFromImage(fixed)
    m = sitk.GetArrayViewFromImage(warped)
    inside = sitk.GetArrayViewFromImage(mask).astype(bool) & np.isfinite(m)
    if inside.sum() < 100:
        return 1.0
    a, b = f[inside], m[inside]

    def binned(x: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(x, (0.5, 99.5))
        return np.clip(((x - lo) / max(hi - lo, 1e-12) * bins).astype(np.int64), 0, bins - 1)

    joint = np.bincount(binned(a) * bins + binned(b), minlength=bins * bins).astype(np.float64)
    joint /= joint.sum()

    def entropy(p: np.ndarray) -> float:
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    return (entropy(joint.reshape(bins, bins).sum(1)) + entropy(joint.reshape(bins, bins).sum(0))) / entropy(joint)


def working_image(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """``image`` on an isotropic ``spacing_mm`` grid (same orientation and extent), Gaussian
    pre-smoothed against aliasing along the axes that get coarser. For registration only."""
    native = np.asarray(image.GetSpacing(), dtype=np.float64)
    sigma = 0.4 * np.sqrt(np.maximum(spacing_mm ** 2 - native ** 2, 0.0))
    image = sitk.Cast(image, sitk.sitkFloat32)
    if sigma.max() > 0:
        image = sitk.SmoothingRecursiveGaussian(image, [float(max(s, 1e-3)) for s in sigma])
    size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), native)]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    # keep the extent: the first voxel centre moves by half the change in voxel size
    origin = np.asarray(image.GetOrigin()) + direction @ ((spacing_mm - native) / 2)
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, origin.tolist(), [spacing_mm] * 3,
                         image.GetDirection(), 0.0, sitk.sitkFloat32)


def nudge(rng: np.random.Generator, centre: np.ndarray, deg: float, mm: float) -> sitk.Euler3DTransform:
    """A rigid move of ``deg`` degrees about a random axis through ``centre`` and ``mm`` along a random direction."""
    axis, shift = rng.standard_normal(3), rng.standard_normal(3)
    move = sitk.Euler3DTransform()
    move.SetCenter([float(c) for c in centre])
    move.SetRotation(*(float(a) for a in np.radians(deg) * axis / np.linalg.norm(axis)))
    move.SetTranslation([float(s) for s in mm * shift / np.linalg.norm(shift)])
    return move


def peak_sharpness(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, mask: sitk.Image,
                   deg: float = 5.0, mm: float = 5.0, n: int = 8, seed: int = 0) -> tuple[float, float]:
    """``(NMI, sharpness)``: how much of the mutual information above 1 is lost, on average, when the
    solution is moved ``deg`` degrees and ``mm`` millimetres in ``n`` random directions (fixed
    ``seed``): ``(NMI - mean NMI moved) / (NMI - 1)``. About 0.5-0.7 at a right solution; near 0 on
    a plateau or off the peak. Unlike NMI itself it hardly depends on the contrasts or slice thickness."""
    nmi = normalized_mutual_information(fixed, moving, transform, mask)
    if nmi <= 1.0 + 1e-6:
        return nmi, 0.0
    array = sitk.GetArrayViewFromImage(mask)
    centre = fixed.TransformContinuousIndexToPhysicalPoint([float(c) for c in np.argwhere(array).mean(0)[::-1]])
    rng = np.random.default_rng(seed)
    moved = [normalized_mutual_information(
        fixed, moving, sitk.CompositeTransform([transform, nudge(rng, centre, deg, mm)]), mask) for _ in range(n)]
    return nmi, float((nmi - np.mean(moved)) / (nmi - 1.0))
