"""BraTS folder layouts: ``<case>/<case><sep><suffix>.nii.gz``.

``brats2021`` (2017-2021, ``sep`` '_'): ``BraTS2021_00000_t1ce.nii.gz``, also ``Brats18_*`` and
``BraTS20_Training_*``; suffixes t1, t1ce, t2, flair, seg.
``brats2023`` (2023+, ``sep`` '-'): ``BraTS-GLI-00000-000-t1c.nii.gz`` (challenge tags GLI, MEN, MET,
PED, SSA, ...); suffixes t1n, t1c, t2w, t2f, seg.
BraTS 2024 MEN-RT is released as ``<case>/<case>_t1c.nii.gz`` and ``<case>_gtv.nii.gz`` (T1c only, one
label, GTV): read as ``brats2021``'s '_' naming whose ``gtv`` label says the scheme, brats2024-men-rt.

The case id is whatever precedes the last separator, so any id is read; ``brats-seg synth``
names its cases ``Synth_00000`` and ``BraTS-SYNTH-00000-000`` (challenge tag SYNTH) so they are
never taken for real BraTS cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..cases import Case
from ..image_io import strip_suffix
from .common import LABEL_KEYS, CaseBuilder, modality_or_none, subfolders, volume_files

_LOOKS_LIKE_VOLUME_ROLE = re.compile(r"t1|t2|flair|seg|label")


@dataclass(frozen=True)
class BratsNaming:
    """``<case>/<case><sep><suffix>.nii.gz`` with ``sep`` '_' (2017-2021) or '-' (2023+).

    A dataset folder holds one folder per case; a single case folder and a flat
    folder of several cases' files (grouped by the part before the suffix) work too.
    """

    layout: str
    sep: str
    suffixes: tuple[str, ...]

    def split(self, stem: str) -> tuple[str, str] | None:
        """(case prefix, role) when the file name ends in a modality or label suffix, else None."""
        if self.sep not in stem:
            return None
        prefix, key = stem.rsplit(self.sep, 1)
        key = key.lower()
        role = "label" if key in LABEL_KEYS else modality_or_none(key)
        return (prefix, role) if prefix and role else None

    def _parsed(self, folder: Path) -> list[tuple[Path, tuple[str, str] | None]]:
        return [(f, self.split(strip_suffix(f))) for f in volume_files(folder)]

    def detect(self, root: Path) -> int:
        return len(self.read(root))

    def read(self, root: Path) -> list[Case]:
        if not root.is_dir():
            return []
        files = self._parsed(root)
        prefixes = {p[0] for _, p in files if p}
        if len(prefixes) == 1:  # root is one case folder
            return [self._case(prefixes.pop(), files)]
        if prefixes:  # a flat folder of several cases' files
            return [self._case(cid, [(f, p) for f, p in files if strip_suffix(f).startswith(cid + self.sep)])
                    for cid in sorted(prefixes)]
        cases = []
        for folder in subfolders(root):
            files = self._parsed(folder)
            if any(p for _, p in files):
                cases.append(self._case(folder.name, files))
        return cases

    def _case(self, case_id: str, files) -> Case:
        b = CaseBuilder(case_id)
        scheme = self.layout
        for f, parsed in files:
            stem = strip_suffix(f)
            if parsed:
                prefix, role = parsed
                if prefix != case_id:
                    b.problems.append(f"file {f.name} does not start with the case id {case_id}{self.sep}")
                b.add_label(f) if role == "label" else b.add_image(role, f)
                if role == "label" and stem.lower().endswith(self.sep + "gtv"):
                    scheme = "brats2024-men-rt"  # MEN-RT's released layout: <case>_t1c + <case>_gtv
            elif _LOOKS_LIKE_VOLUME_ROLE.search(stem.removeprefix(case_id).lower()):
                b.problems.append(f"unrecognised file {f.name} (expected suffixes {', '.join(self.suffixes)}, seg)")
        return b.build(self.layout, scheme)


BRATS2021 = BratsNaming("brats2021", "_", ("t1", "t1ce", "t2", "flair"))
BRATS2023 = BratsNaming("brats2023", "-", ("t1n", "t1c", "t2w", "t2f"))
