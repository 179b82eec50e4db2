"""Published BraTS results beside ours: the table shipped as ``reference_scores.csv``.

Each row gives a published mean Dice (and HD95, mm) per region with its edition,
data split, metric kind (legacy or lesion-wise) and source. Those figures come
from other data (challenge test or validation sets, cross-validation on the full
training set): they are comparable to ours only when we evaluated on the same
split with the same metric definitions, and every table printed from here says so.
"""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from pathlib import Path

from ..conventions import REGIONS
from ..errors import BratsSegError

DISCLAIMER = (
    "Published figures come from OTHER DATA (the challenges' validation/test sets or cross-validation on the "
    "full training set) and sometimes other metric code: they are not comparable to yours unless you evaluated "
    "on the same split with the same definitions."
)
NUMBER_COLUMNS = ("dice_wt", "dice_tc", "dice_et", "dice_mean", "hd95_wt", "hd95_tc", "hd95_et")


def reference_scores() -> list[dict]:
    """Rows of the shipped table (numbers as float, empty as None)."""
    text = files("brats_seg.evaluation").joinpath("reference_scores.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for k in NUMBER_COLUMNS:
            row[k] = float(row[k]) if row[k] else None
        if row["dice_mean"] is None and None not in (row["dice_wt"], row["dice_tc"], row["dice_et"]):
            row["dice_mean"] = (row["dice_wt"] + row["dice_tc"] + row["dice_et"]) / 3
    return rows


def our_scores(summary: dict) -> list[dict]:
    """Rows in the reference table's columns from an evaluation summary (legacy, and lesion-wise if present);
    none for a summary without the WT/TC/ET regions."""
    stats = summary["metrics"]
    out = []
    for kind, dice_key, hd_key in (("legacy", "dice", "hd95"), ("lesion-wise", "lesion_dice", "lesion_hd95")):
        if any(dice_key not in stats.get(r, {}) for r in REGIONS):  # published rows are WT/TC/ET only
            continue
        row = {"method": f"ours: {summary.get('prediction_dir', '')}", "edition": "", "metrics": kind,
               "data_split": f"your {summary.get('n_scored', '?')} cases ({summary.get('reference_dir', '')})"}
        for r in REGIONS:
            row[f"dice_{r.lower()}"] = stats[r][dice_key]["mean"]
            row[f"hd95_{r.lower()}"] = stats[r][hd_key]["mean"]
        dices = [row[f"dice_{r.lower()}"] for r in REGIONS]
        row["dice_mean"] = None if None in dices else sum(dices) / 3
        out.append(row)
    return out


def load_summary(eval_dir: str | Path) -> dict:
    import json

    path = Path(eval_dir)
    path = path / "summary.json" if path.is_dir() else path
    if not path.is_file():
        raise BratsSegError(f"{path}: no summary.json (run `brats-seg evaluate` first)")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise BratsSegError(f"{path}: not a JSON summary ({e})") from None


def benchmark_table(summary: dict, edition: str | None = None) -> str:
    """Markdown table: our means first, then the published rows (optionally those whose edition contains
    ``edition``), then the disclaimer and sources. Published rows score WT, TC and ET only: an evaluation
    that scores other groups too (brats2024-gli's six, MEN-RT's GTV) gets none, and a note says why."""
    groups = list(summary.get("metrics", {}))
    matched = groups == list(REGIONS)
    published = [r for r in reference_scores() if matched and (edition is None
                                                               or edition.lower() in r["edition"].lower())]
    cols = ("dice_wt", "dice_tc", "dice_et", "dice_mean", "hd95_wt", "hd95_tc", "hd95_et")
    head = ["method", "edition", "data", "metrics", "Dice WT", "Dice TC", "Dice ET", "Dice mean",
            "HD95 WT", "HD95 TC", "HD95 ET"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * 7]

    def fmt(v):
        return "" if v is None else f"{v:.4f}" if v <= 1.0 else f"{v:.2f}"

    for r in our_scores(summary) + published:
        cells = [r["method"], r["edition"], r["data_split"], r["metrics"], *(fmt(r[c]) for c in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    if not matched:
        lines += ["", f"No published rows: this evaluation scores {', '.join(groups) or 'no group'}; the published"
                  " rows score WT, TC and ET only, so they are shown only where the groups match."]
    lines += ["", f"**{DISCLAIMER}**", "", "Sources:"]
    lines += [f"- {r['method']}: {r['source']} ({r['checked']})" for r in published]
    return "\n".join(lines) + "\n"
