"""Settings of the preparation, as dataclasses (saved whole in every ``prepare.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conventions import MODALITIES


@dataclass(frozen=True)
class RegistrationConfig:
    """One registration stage (see :mod:`.registration`). ``shrink``/``sigmas``: pyramid
    levels (shrink factor, Gaussian sigma in mm); ``samples``: about how many fixed voxels
    the metric samples per level (random, fixed ``seed``, at least 1: SimpleITK reads 0 as "seed from the
    wall clock", which made runs differ); ``step_mm``/``min_step_mm``: optimiser step bounds."""

    bins: int = 32
    samples: int = 30_000
    shrink: tuple[int, ...] = (4, 2, 1)
    sigmas: tuple[float, ...] = (2.0, 1.0, 0.0)
    iterations: int = 200
    step_mm: float = 2.0
    min_step_mm: float = 1e-3
    seed: int = 1
    threads: int = 1
    """Threads of the metric: its sums over threads come out in a varying order (runs differed in the
    8th digit with 2 threads, and the optimiser amplified that), one thread gives one answer."""

    def __post_init__(self):
        if self.seed < 1:
            raise ValueError(f"registration seed must be >= 1 (SimpleITK takes 0 as a wall-clock seed): {self.seed}")


@dataclass(frozen=True)
class PrepareConfig:
    """How scans become a BraTS-form case.

    ``sequences``: those the case must have (a missing one is refused, naming it);
    ``brain_extraction``: a back-end name from :data:`~.brain.BRAIN_EXTRACTORS` or ``auto``
    (``none`` when the T1c is already skull-stripped, else ``deepbet``); ``n4_shrink``:
    N4 (for registration only) runs at this shrink factor of the working grid;
    ``working_mm``: registrations run on copies resampled to this isotropic spacing; ``interpolation``: ``bspline``
    (cubic, as the toolkit's own resampling; clamped at 0) or ``linear`` for the one resampling of
    each image into the atlas (cubic keeps contrast: the rule network of the tests agrees better
    with its output on the untouched case, 0.76-0.97 vs 0.76-0.96 Dice; it costs ~2 s per image); ``min_similarity``: QC
    thresholds (co-registration, atlas) on the sharpness of each registration's similarity
    peak (default :data:`~.qc.MIN_SIMILARITY`)."""

    sequences: tuple[str, ...] = MODALITIES
    brain_extraction: str = "auto"
    rigid: RegistrationConfig = field(default_factory=RegistrationConfig)
    affine: RegistrationConfig = field(
        default_factory=lambda: RegistrationConfig(samples=20_000, shrink=(2, 1), sigmas=(2.0, 1.0)))
    working_mm: float = 2.0
    n4: bool = True
    n4_shrink: int = 4
    interpolation: str = "bspline"
    min_similarity: tuple[float, float] | None = None

    @property
    def needed(self) -> tuple[str, ...]:
        """The sequences a case must have: the T1c (the reference) and ``sequences``."""
        return tuple(dict.fromkeys(("t1c", *self.sequences)))
