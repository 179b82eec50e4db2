"""Reading a case's volumes through the checks every command shares: :func:`load_case`.

Above :mod:`.checks` (which builds on :mod:`.cases`), so that reading a case closes no import circle.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ...conventions import MODALITIES
from .cases import Case, CaseVolumes
from .checks import read_case


def load_case(case: Case, channels: Sequence[str] = MODALITIES, *, with_label: bool = True,
              scheme: str | None = None, allow_missing: Collection[str] = ()) -> CaseVolumes:
    """Read a case's modalities in the order ``channels`` (canonical names) and its label, through
    the checks every command shares (:func:`brats_seg.data.reading.checks.read_case`).

    Raises :class:`CaseError` in one line naming the case, each file and its problem: a
    missing modality, a shape or affine mismatch, NaN/Inf, an all-zero volume, a 4-D
    volume, a truncated or unreadable file, a label map with non-integer values or values
    outside its scheme (``scheme``, else the one its values and layout give).
    """
    return read_case(case, channels, with_label=with_label, scheme=scheme, allow_missing=allow_missing)
