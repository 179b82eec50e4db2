"""A CSV manifest (``cases.csv``): columns case_id, t1n, t1c, t2w, t2f (any modality alias), optional
label and label_scheme; relative paths are relative to the CSV's folder.

Every column must mean something: an unknown header (a misspelt modality, say) is an error
naming the file and listing the accepted names, never a column silently left out.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ....conventions import LABEL_SCHEMES, MODALITY_ALIASES, get_scheme
from ....errors import CaseError
from ..cases import Case
from .common import LABEL_KEYS, CaseBuilder, modality_or_none

CASE_ID_COLUMNS = ("case_id", "case", "id", "subject", "subject_id")


def detect(root: Path) -> int:
    return 1 if root.is_file() and root.suffix.lower() == ".csv" else 0


def _rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CaseError(f"{path}: unreadable CSV manifest ({e})") from None
    if not rows:
        raise CaseError(f"{path}: empty CSV manifest")
    return rows


def _columns(path: Path, header: list[str]) -> tuple[int, dict[int, str]]:
    """(case id column, {column: modality, "label" or "label_scheme"}) of a manifest's header."""
    names = [h.strip().lower() for h in header]
    id_col = next((names.index(c) for c in CASE_ID_COLUMNS if c in names), None)
    if id_col is None:
        raise CaseError(f"{path}: no case id column (one of {', '.join(CASE_ID_COLUMNS)});"
                        f" columns: {', '.join(names)}")
    columns: dict[int, str] = {}
    for i, name in enumerate(names):
        if i == id_col:
            continue
        role = "label" if name in LABEL_KEYS else "label_scheme" if name == "label_scheme" else modality_or_none(name)
        if role is None:
            raise CaseError(f"{path}: unknown column {header[i]!r}; accepted: a case id"
                            f" ({', '.join(CASE_ID_COLUMNS)}), modalities ({', '.join(sorted(MODALITY_ALIASES))}),"
                            f" the label ({', '.join(sorted(LABEL_KEYS))}) and label_scheme")
        if role in columns.values():
            first = next(j for j, r in columns.items() if r == role)
            raise CaseError(f"{path}: two columns mean {role} ({header[first]!r} and {header[i]!r})")
        columns[i] = role
    return id_col, columns


def _case(path: Path, n: int, case_id: str, row: list[str], columns: dict[int, str]) -> tuple[CaseBuilder, str | None]:
    """The files of row ``n`` and the label scheme it names (None when it names none or a bad one)."""
    b, scheme = CaseBuilder(case_id), None
    for i, role in columns.items():
        cell = row[i].strip() if i < len(row) else ""
        if not cell:
            continue
        if role == "label_scheme":
            if cell.lower() in LABEL_SCHEMES:
                scheme = get_scheme(cell).name
            else:
                b.problems.append(f"unknown label scheme {cell!r} in {path.name} row {n}"
                                  f" (valid: {', '.join(LABEL_SCHEMES)})")
            continue
        file = Path(cell).expanduser()
        file = file if file.is_absolute() else path.parent / file
        b.add_label(file) if role == "label" else b.add_image(role, file)
    return b, scheme


def read(path: Path) -> list[Case]:
    if not detect(path):
        raise CaseError(f"{path}: the csv layout needs a .csv manifest file")
    rows = _rows(path)
    id_col, columns = _columns(path, rows[0])
    builders: dict[str, CaseBuilder] = {}
    schemes: dict[str, str | None] = {}
    first_row: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        case_id = row[id_col].strip() if id_col < len(row) else ""
        if not case_id:
            raise CaseError(f"{path}: row {n} has no case id")
        if case_id in builders:
            builders[case_id].problems.append(f"listed twice in {path.name} (rows {first_row[case_id]} and {n});"
                                              " the second row is ignored")
            continue
        builders[case_id], schemes[case_id] = _case(path, n, case_id, row, columns)
        first_row[case_id] = n
    return [b.build("csv", schemes[cid]) for cid, b in builders.items()]
