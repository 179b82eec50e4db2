"""Which file or series is which sequence: given by flag or CSV, or recognised.

Three ways in, one result (:class:`ScanSet`, the mapping printed and saved as
``sequences.json``):

* explicit paths (``--t1c DIR_OR_FILE`` ..., or :func:`scan_set`), one per sequence;
* a CSV manifest (``case_id, t1n, t1c, t2w, t2f``, any alias as column name; paths relative
  to the CSV; one row per case), read by the ``csv`` layout of :mod:`brats_seg.data`;
* a folder (:func:`scan_set_from_folder`): volume files named by their sequence
  (``flair.nii.gz``, ``t1ce.nrrd``, any alias), else every DICOM series below it,
  recognised from its description (:data:`SEQUENCE_RULES`, first match wins; a T1 with a
  contrast agent tag counts as T1c). When several series match one sequence (two T1c, or T1
  series with no word or tag telling pre- from post-contrast), nothing is guessed: one line lists
  them and names the flag that decides (``--pick SEQ=SERIES_NUMBER``). A series that cannot be
  read is refused in one line (kept in ``refused``) and the others go on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..conventions import MODALITIES, canonical_modality
from ..data.reading.cases import case_from_files
from ..data.reading.image_io import is_image_file, strip_suffix
from ..errors import BratsSegError, CaseError
from ..files import write_text
from .dicom_index import DicomSeries, find_series
from .series import Series, read_dicom, read_series

_T1 = r"(t1|mprage|mp.?rage|\bmpr\b|bravo|spgr|\btfe\b|\bffe\b|vibe|flash)"
_CONTRAST = r"(\+\s*c\b|\bc\+|\bc\b|post|gad|\bgd\b|contrast|\bce\b|\bkm\b)"
_PRE = r"(\bpre|non.?contrast|without|\bwo\b|nativ)"

SEQUENCE_RULES: tuple[tuple[str | None, str], ...] = (
    (None, r"localizer|scout|survey|\bloc\b|3.?plane|dwi|diffusion|\badc\b|trace|\bdti\b|perfusion|\bper\b|\bdsc\b"
           r"|\bdce\b|\bswi\b|swan|t2\s*\*|t2star|\bmra\b|\btof\b|\bmip\b|\basl\b|\bcbf\b|\bfa\b|map|slope"
           r"|coefficient|aniso|eigen|enhance|isotropic|summary|scanogram|calib|\bcal\b|fmri|\bbold\b|epirt"
           r"|spectro|\bcsi\b|probe|tractography|\bsub\b"),
    ("t1n", rf"{_T1}.*{_PRE}|{_PRE}.*{_T1}"),
    ("t1c", rf"\bt1c\b|{_T1}.*{_CONTRAST}|{_CONTRAST}.*{_T1}"),
    ("t1n", _T1),
    ("t2f", r"flair|dark.?fl|\btirm\b"),
    (None, r"\bgre\b|mpgr|hemo|susceptib|\bpd|pdt2|t2pd|dual|double.?echo"),
    ("t2w", r"t2|\btse\b|\bfse\b|ssfse|grase|propeller|blade"),
)
"""(sequence, regular expression on the series description and protocol name, lower case, ``_`` as space):
the first that matches decides; ``None`` marks series that are never used (diffusion, perfusion, maps,
localizers; and, where no T1 word came first, T2* gradient echo, proton density and dual-echo series).
A T1 word decides before FLAIR (a T1-weighted FLAIR is a T1); a ``pre`` word before a contrast word."""


def sequence_from_description(tags: Mapping[str, str]) -> str | None:
    """The sequence a DICOM series' description names (None: not one we use)."""
    text = f"{tags.get('series_description', '')} {tags.get('protocol_name', '')}".lower().replace("_", " ")
    for sequence, pattern in SEQUENCE_RULES:
        if re.search(pattern, text):
            if sequence == "t1n" and tags.get("contrast_agent", "").strip():
                return "t1c"
            return sequence
    return None


@dataclass
class ScanSet:
    """The inputs of one case: ``series`` per canonical sequence, ``how`` each was chosen,
    what was seen but not used (``ignored``: one line each) and why a recognised series was
    refused (``refused``: sequence -> one line)."""

    case_id: str
    series: dict[str, Series]
    how: dict[str, str]
    ignored: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The mapping as printed: ``t2f <- AX FLAIR (series 5, ...) [series description]``."""
        out = [f"{m} <- {self.series[m].describe()} [{self.how[m]}]" for m in MODALITIES if m in self.series]
        return out + [f"not used: {line}" for line in self.ignored]

    def mapping(self) -> dict:
        """JSON-able record of the mapping (written as ``sequences.json``)."""
        return {"case_id": self.case_id,
                "sequences": {m: {"source": str(s.source), "kind": s.kind, "how": self.how[m],
                                  "shape": list(s.image.shape), "spacing": [round(x, 4) for x in s.image.spacing],
                                  "dicom": s.tags} for m, s in self.series.items()},
                "not_used": self.ignored}

    def save(self, path: str | Path) -> Path:
        return write_text(path, json.dumps(self.mapping(), indent=1))

    def require(self, sequences: tuple[str, ...]) -> None:
        """Refuse, in one line naming them, sequences the case lacks; and series of different
        patients. (A model that supports a subset states fewer: the hook for missing sequences.)"""
        missing = [m for m in sequences if m not in self.series]
        refused = [self.refused[m] for m in missing if m in self.refused]
        if refused:
            raise CaseError(refused[0])
        if missing:
            have = ", ".join(f"{m} ({self.series[m].source.name})" for m in MODALITIES if m in self.series)
            raise CaseError(f"case {self.case_id}: missing sequence {', '.join(missing)} (found {have or 'none'})")
        patients = {m: s.tags["patient_id"] for m, s in self.series.items() if s.tags.get("patient_id")}
        if len(set(patients.values())) > 1:
            listed = ", ".join(f"{m} {p!r}" for m, p in patients.items())
            raise CaseError(f"case {self.case_id}: series of different patients ({listed})")


def scan_set(paths: Mapping[str, str | Path], case_id: str = "case", how: str = "given") -> ScanSet:
    """Read one sequence per entry of ``paths`` (any alias as key; files or DICOM series folders)."""
    series, hows = {}, {}
    for name, path in paths.items():
        m = canonical_modality(name)
        if m in series:
            raise BratsSegError(f"case {case_id}: {name} and another input both mean {m}")
        series[m], hows[m] = read_series(path), how
    return ScanSet(case_id, series, hows)


def _from_named_files(folder: Path, case_id: str) -> ScanSet | None:
    named, ignored = {}, []
    for f in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
        try:
            m = canonical_modality(strip_suffix(f))
        except BratsSegError:
            ignored.append(f"{f.name} (file name names no sequence)")
            continue
        if m in named:
            raise CaseError(f"{folder}: {named[m].name} and {f.name} are both {m}")
        named[m] = f
    if not named:
        return None
    return ScanSet(case_id, {m: read_series(p) for m, p in named.items()}, {m: "file name" for m in named}, ignored)


def _candidates(found: list[DicomSeries], picks: Mapping[str, str]) -> tuple[dict[str, list], list[str]]:
    """Series per sequence: those ``picks`` names (sequence -> series number), then the others by
    their descriptions; and one line per series not used."""
    by_sequence: dict[str, list[DicomSeries]] = {}
    ignored, picked = [], set()
    numbers = ", ".join(s.tags.get("series_number", "?") for s in found)
    for m, number in picks.items():
        hits = [s for s in found if s.tags.get("series_number") == str(number)]
        if len(hits) != 1:
            raise CaseError(f"--pick {m}={number}: {len(hits)} series have that number (series numbers: {numbers})")
        by_sequence[m] = hits
        picked.add(hits[0].uid)
    for s in found:
        if s.uid in picked:
            continue
        m = sequence_from_description(s.tags)
        if m is None or m in picks:
            why = "its description names no sequence we use" if m is None else f"--pick chose another {m}"
            ignored.append(f"{s.label()}: {why}")
            continue
        by_sequence.setdefault(m, []).append(s)
    return by_sequence, ignored


def _ambiguous(folder: Path, by_sequence: dict[str, list[DicomSeries]]) -> None:
    """Ask, in one line listing the candidates and the flag that decides, when a sequence has several."""
    for m, cands in by_sequence.items():
        if len(cands) < 2:
            continue
        listed = "; ".join(c.label().rsplit(" in ", 1)[0] for c in cands)
        if m == "t1n" and "t1c" not in by_sequence:
            raise CaseError(f"{folder}: {len(cands)} T1 series and no contrast tag or word to tell pre- from"
                            f" post-contrast ({listed}); say which with --pick t1n=SERIES_NUMBER --pick"
                            " t1c=SERIES_NUMBER")
        raise CaseError(f"{folder}: {len(cands)} series could be {m} ({listed}); say which with"
                        f" --pick {m}=SERIES_NUMBER")


def _from_dicom(folder: Path, case_id: str, picks: Mapping[str, str]) -> ScanSet | None:
    """Every DICOM series below ``folder``, recognised from its description (or picked); a series
    that cannot be read is refused in one line and the others go on."""
    found = find_series(folder)
    if not found:
        return None
    by_sequence, ignored = _candidates(found, {canonical_modality(k): v for k, v in picks.items()})
    _ambiguous(folder, by_sequence)
    series, how, refused = {}, {}, {}
    for m, (chosen,) in by_sequence.items():
        try:
            series[m] = read_dicom(chosen)
        except CaseError as e:
            refused[m] = str(e)
            ignored.append(f"refused as {m}: {e}")
            continue
        desc = chosen.tags.get("series_description", "")
        how[m] = f"--pick {m}" if m in picks else f"series description {desc!r}"
    return ScanSet(case_id, series, how, ignored, refused)


def scan_set_from_folder(folder: str | Path, case_id: str | None = None,
                         picks: Mapping[str, str] | None = None) -> ScanSet:
    """Recognise the sequences in ``folder``: files named by sequence, else DICOM series below it
    (``picks``: sequence -> series number, for series the descriptions do not tell apart)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CaseError(f"{folder}: not a folder")
    case_id = case_id or folder.name
    scans = _from_named_files(folder, case_id) or _from_dicom(folder, case_id, picks or {})
    if scans is None:
        raise CaseError(f"{folder}: no volume files named by sequence (t1, t1c, t2, flair, ...) and no DICOM series")
    return scans


def scan_sets_from_csv(path: str | Path) -> list[tuple[str, dict[str, Path]]]:
    """``(case_id, {sequence: path})`` per row of a CSV manifest (read by the ``csv`` layout);
    read each with :func:`scan_set` (how = ``CSV``)."""
    from ..data.reading.layouts import discover_cases

    out = []
    for case in discover_cases(path, layout="csv"):
        if case.problems:
            raise CaseError(f"{path}: case {case.case_id}: {case.problems[0]}")
        out.append((case.case_id, dict(case.images)))
    return out


@dataclass(frozen=True)
class ScanSource:
    """Where one case's scans are: ``paths`` per sequence (any alias), or a ``folder`` whose
    sequences are recognised. :meth:`read` reads them (one-line :class:`CaseError` if bad)."""

    case_id: str
    paths: Mapping[str, Path] | None = None
    folder: Path | None = None
    how: str = "given"
    picks: Mapping[str, str] | None = None

    def read(self) -> ScanSet:
        if self.folder is not None:
            return scan_set_from_folder(self.folder, self.case_id, self.picks)
        return scan_set(self.paths or {}, self.case_id, self.how)


def scan_sources(source: str | Path | None = None, paths: Mapping[str, str | Path] | None = None,
                 case_id: str | None = None, picks: Mapping[str, str] | None = None) -> list[ScanSource]:
    """The cases named by a folder (one case; ``picks``: sequence -> DICOM series number, where the
    descriptions do not decide), a CSV manifest (one case per row) or ``paths`` (one case: sequence
    -> file or DICOM folder). Nothing is read yet."""
    paths = {k: Path(v) for k, v in (paths or {}).items() if v is not None}
    if source is not None and paths:
        raise BratsSegError("give either a folder/CSV or one path per sequence (--t1c ...), not both")
    if paths:  # one case from one path per sequence, as predict's --t1c ... makes it; the id: the folder's name
        case = case_from_files(paths, case_id or next(iter(paths.values())).parent.name or None)
        return [ScanSource(case.case_id, dict(case.images), how="flag")]
    if source is None:
        raise BratsSegError("no input: give a case folder, a CSV manifest, or --t1c (and the other sequences)")
    source = Path(source).expanduser()
    if source.is_file() and source.suffix.lower() == ".csv":
        return [ScanSource(cid, files, how="CSV") for cid, files in scan_sets_from_csv(source)]
    if not source.is_dir():
        raise CaseError(f"{source}: not a folder or CSV manifest")
    return [ScanSource(case_id or source.name, folder=source, picks=picks)]
