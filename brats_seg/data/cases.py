"""The case model: which files make up one subject (:class:`Case`), and reading them (:func:`load_case`).

Cases are found by :func:`brats_seg.data.layouts.discover_cases` in any supported
dataset layout. A :class:`Case` only names files; :func:`load_case` reads them into a
:class:`CaseVolumes` (channels stacked in a given order, by NAME).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import MODALITIES, MODALITY_ALIASES, canonical_modality
from ..errors import BratsSegError, CaseError
from .io import Image, read_image


@dataclass(frozen=True)
class Case:
    """One subject's files.

    ``images``: canonical modality -> file. For a 4-D file holding several
    modalities (MSD), several modalities name the same file and ``channel_index``
    says which volume along the 4th axis each one is.
    ``label``: the label map, or None for unlabeled (validation/test) cases.
    ``label_scheme``: the scheme the layout implies (a hint; ``check`` verifies it).
    """

    case_id: str
    images: Mapping[str, Path]
    label: Path | None = None
    layout: str = "unknown"
    label_scheme: str | None = None
    channel_index: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Problems found while discovering (duplicate or unknown modality files)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.images) + tuple(
            m for m in self.images if m not in MODALITIES
        )


@dataclass
class CaseVolumes:
    """A loaded case.

    ``image``: ``(C, H, W, D)`` float32, channels in the order of ``channels``.
    ``label``: ``(H, W, D)`` integer label map or None. ``reference``: geometry of
    the first channel's file (affine, header, shape), used when writing outputs.
    """

    case_id: str
    image: np.ndarray
    channels: tuple[str, ...]
    label: np.ndarray | None
    reference: Image
    label_scheme: str | None = None

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.reference.spacing


def known_modality(name: str, source: str | Path, what: str = "channel name") -> str:
    """The canonical modality ``name`` means; a :class:`CaseError` naming ``source`` (the file that
    says it) and listing the accepted names when it means none."""
    try:
        return canonical_modality(str(name))
    except BratsSegError:
        raise CaseError(f"{source}: {what} {name!r} is not a known modality"
                        f" (accepted: {', '.join(sorted(MODALITY_ALIASES))})") from None


def _read_channel(case: Case, modality: str, cache: dict) -> Image:
    path = case.images[modality]
    if path not in cache:
        cache[path] = read_image(path)
    img = cache[path]
    if modality in case.channel_index:
        if img.array.ndim != 4:
            raise CaseError(f"case {case.case_id}: {path} should be 4-D (one volume per modality),"
                            f" got shape {img.shape}")
        return Image(img.array[..., case.channel_index[modality]], img.affine, img.header, path)
    if img.array.ndim != 3:
        raise CaseError(f"case {case.case_id}: {modality} file {path} is {img.array.ndim}-D with shape "
                        f"{'x'.join(map(str, img.shape))}; expected a 3-D volume")
    return img


def load_case(case: Case, channels: Sequence[str] = MODALITIES, *, with_label: bool = True) -> CaseVolumes:
    """Read a case's modalities in the order ``channels`` (canonical names) and its label.

    Raises :class:`CaseError` naming the case and file for a missing modality or a
    shape mismatch. Run :func:`brats_seg.data.checks.check_case` for the full checks.
    """
    missing = [m for m in channels if m not in case.images]
    if missing:
        raise CaseError(f"case {case.case_id}: missing modality {', '.join(missing)}"
                        f" (found {', '.join(case.modalities) or 'none'})")
    cache: dict = {}
    vols = [_read_channel(case, m, cache) for m in channels]
    ref = vols[0]
    for m, v in zip(channels, vols):
        if v.shape != ref.shape:
            raise CaseError(f"case {case.case_id}: {m} has shape {'x'.join(map(str, v.shape))},"
                            f" {channels[0]} has {'x'.join(map(str, ref.shape))}")
    label = None
    if with_label and case.label is not None:
        lab = read_image(case.label, dtype=None)
        if lab.shape != ref.shape:
            raise CaseError(f"case {case.case_id}: label {case.label} has shape {'x'.join(map(str, lab.shape))},"
                            f" images have {'x'.join(map(str, ref.shape))}")
        label = np.asarray(lab.array)
        label = (np.rint(label) if label.dtype.kind == "f" else label).astype(np.uint8)
    image = np.stack([v.array for v in vols]).astype(np.float32, copy=False)
    return CaseVolumes(case.case_id, image, tuple(channels), label, ref, case.label_scheme)
