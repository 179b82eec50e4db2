"""What an experiment writes: ``results.csv``, ``results.md`` (one Markdown table writer for every report)
and ``summary.json``, each atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_path

SMOKE_NOTE = ("**smoke preset**: a handful of optimizer steps on tiny synthetic volumes; it shows that every arm runs"
              " end to end, and its numbers say nothing about which arm is better (batch-norm networks such as"
              " resnet_unet even score 0 here: their running statistics have barely moved). Use `--preset full`.")


def cell(value: Any, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals (``nan`` kept), booleans as yes/no, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Rows as CSV (atomic); missing values are empty cells."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: cell(row.get(c), 6) if isinstance(row.get(c), float) else row.get(c, "")
                         for c in columns})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` (dicts) in ``columns`` order."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c), 3) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and paths."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def write_results(out: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str,
                  notes: Sequence[str] = (), sections: Mapping[str, str] | None = None,
                  summary: Mapping[str, Any] | None = None,
                  md_columns: Sequence[str] | None = None) -> dict[str, Path]:
    """``results.csv`` (every column), ``results.md`` (title, notes, the table in ``md_columns`` (default:
    every column), extra sections, a link to ``results.png``) and ``summary.json``; all atomic. Returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(out / "results.csv", rows, columns)}
    md = [f"# {title}", ""]
    if summary is not None and summary.get("preset") == "smoke":
        md += [SMOKE_NOTE, ""]
    md += [f"- {n}" for n in notes]
    md += ["", markdown_table(rows, md_columns or columns), ""]
    for head, body in (sections or {}).items():
        md += [f"## {head}", "", body, ""]
    if (out / "results.png").is_file():
        md += ["![results](results.png)", ""]
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(md))
    paths["md"] = out / "results.md"
    if summary is not None:
        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=1, default=json_default))
        paths["summary"] = out / "summary.json"
    return paths
