"""The case model: which files make up one subject (:class:`Case`), and reading them (:func:`load_case`).

Cases are found by :func:`brats_seg.data.reading.layouts.discover_cases` in any supported
dataset layout. A :class:`Case` only names files; :func:`load_case` reads them into a
:class:`CaseVolumes` (channels stacked in a given order, by NAME).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...conventions import MODALITIES, MODALITY_ALIASES, canonical_modality
from ...errors import BratsSegError, CaseError
from .image_io import Image


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
    scheme_given: bool = False
    """``label_scheme`` was stated by the user (``--label-scheme``): the checks hold the labels to it."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.images) + tuple(
            m for m in self.images if m not in MODALITIES
        )


@dataclass
class CaseVolumes:
    """A loaded case.

    ``image``: ``(C, H, W, D)`` float32, channels in the order of ``channels``.
    ``label``: ``(H, W, D)`` uint8 label map or None. ``reference``: geometry of
    the first channel's file (affine, header, shape), used when writing outputs.
    ``label_scheme``: the scheme the label's values settle, else the layout's hint.
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


def case_from_files(images: Mapping[str, str | Path], case_id: str | None = None) -> Case:
    """One unlabelled case from one file per sequence (``{"t1c": "b.nii.gz", ...}``, any subset; aliases
    accepted), as ``brats-seg predict --t1c ... --t2f ...`` gives it.

    ``case_id``: default the files' common name prefix without the partial sequence name
    (``subj7-t1c.nii.gz`` + ``subj7-t2f.nii.gz`` -> ``subj7``), or one file's name without its suffix.
    """
    import os
    import re

    from .image_io import strip_suffix

    files = {canonical_modality(m): Path(p) for m, p in images.items() if p is not None}
    if not files:
        raise BratsSegError("no files given: name at least one sequence (--t1n/--t1c/--t2w/--t2f)")
    if not case_id:
        stems = [strip_suffix(p) for p in files.values()]
        prefix = os.path.commonprefix(stems) if len(stems) > 1 else stems[0]
        cut = re.match(r"(.*)[-_.]", prefix)  # drop the partial sequence name: "subj7-t" -> "subj7"
        case_id = (cut.group(1) if cut and len(stems) > 1 else prefix).rstrip("-_. ")
    return Case(case_id or "case", files, None, "files", None)
