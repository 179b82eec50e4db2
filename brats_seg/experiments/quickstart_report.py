"""The quickstart's report: ``report.md`` and ``report.html`` from one list of :class:`Section`.

Held-out scores of synthetic cases are labeled as such (row and heading) and are never set beside
published challenge results: synthetic cases are far easier than real scans, and a table that puts
them above nnU-Net's reads as "beats the challenge winner". For real data the report says how many
cases were scored, gives each region's 95 % bootstrap interval of the mean (a handful of cases make
a wide one), and shows the published results in a separate section that says they come from other
data.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import REGIONS
from ..data.reading.cases import Case
from .heldout_scores import bootstrap_interval
from .tables import markdown_table

BOOTSTRAP_RESAMPLES = 10000
SYNTHETIC_NOTE = (
    "These cases were synthesized by `brats-seg synth`: one tumor per case, clean tissue contrast, no scanner"
    " artefacts. They are far easier than real BraTS scans, so these scores show that the pipeline runs end to"
    " end, not how well it segments real tumors. Published challenge results are shown only for runs on real"
    " data (`brats-seg quickstart --data DIR`).")
SYNTHETIC_HEADER = ("region", "Dice mean ± std", "Dice median", "HD95 median (mm)")
REAL_HEADER = ("region", "cases", "Dice mean ± std", "Dice mean, 95 % interval", "Dice median", "HD95 median (mm)",
               "HD95 mean, 95 % interval (mm)")
PUBLISHED_HEADER = ("method", "data", "metrics", "Dice WT", "Dice TC", "Dice ET", "Dice mean")


@dataclass
class Section:
    """One part of the report: a heading, paragraphs, an optional table, pictures (``(path, caption)``)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    header: Sequence[str] = ()
    rows: list[dict[str, str]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- numbers


def heldout_intervals(rows: Sequence[dict], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per region (each group the rows score: WT, TC, ET, and RC, GTV, ... where the scheme has them): the
    number of scored cases and the 95 % bootstrap interval of the mean Dice and HD95 (``[low, high]``; None
    with fewer than two cases) from the per-case rows of an evaluation."""
    out = {}
    for region in dict.fromkeys(r["region"] for r in rows) or REGIONS:
        scored = [r for r in rows if r["region"] == region and r["status"] in ("ok", "missing")]
        out[region] = {"n": len(scored)}
        for metric in ("dice", "hd95"):
            ci = bootstrap_interval([r[metric] for r in scored], resamples=BOOTSTRAP_RESAMPLES, seed=seed)
            out[region][metric] = None if ci is None else [round(ci[0], 4), round(ci[1], 4)]
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _interval(ci: Sequence[float] | None, digits: int) -> str:
    return "n/a (fewer than 2 cases)" if ci is None else f"{ci[0]:.{digits}f} to {ci[1]:.{digits}f}"


def score_rows(summary: dict) -> list[dict[str, str]]:
    """One row per scored group; for synthetic data the region says so, for real data the intervals are added."""
    rows = []
    for region in summary["metrics"]:
        d, h = summary["metrics"][region]["dice"], summary["metrics"][region]["hd95"]
        if summary["synthetic"]:
            cells = [f"{region} (synthetic)", f"{_fmt(d['mean'])} ± {_fmt(d['std'])}", _fmt(d["median"]),
                     _fmt(h["median"], 1)]
            rows.append(dict(zip(SYNTHETIC_HEADER, cells)))
            continue
        ci = summary["intervals"][region]
        cells = [region, str(ci["n"]), f"{_fmt(d['mean'])} ± {_fmt(d['std'])}", _interval(ci["dice"], 3),
                 _fmt(d["median"]), _fmt(h["median"], 1), _interval(ci["hd95"], 1)]
        rows.append(dict(zip(REAL_HEADER, cells)))
    return rows


def published_rows() -> list[dict[str, str]]:
    """The shipped published results (other, real data), without any row of ours."""
    from ..evaluation.challenge import reference_scores

    rows = []
    for r in reference_scores():
        cells = [r["method"], f"{r['edition']} {r['data_split']}".strip(), r["metrics"]]
        cells += [_fmt(r[c]) for c in ("dice_wt", "dice_tc", "dice_et", "dice_mean")]
        rows.append(dict(zip(PUBLISHED_HEADER, cells)))
    return rows


# --------------------------------------------------------------------------- sections


def score_section(summary: dict) -> Section:
    """The held-out scores, with the heading and note their kind of data calls for."""
    n = summary["n_scored"]
    cases = f"{n} case{'s' if n != 1 else ''}"
    if summary["synthetic"]:
        return Section(f"Held-out scores on {cases}, synthetic (far easier than real scans)",
                       [SYNTHETIC_NOTE], SYNTHETIC_HEADER, score_rows(summary))
    text = (f"{n} held-out real {cases.split()[1]} scored ({len(summary['train_cases'])} used for training)."
            " With so few cases the mean is uncertain: the 95 % interval of each mean is a percentile bootstrap"
            f" over the cases ({BOOTSTRAP_RESAMPLES:,} resamples, seed {summary['config']['seed']}).")
    return Section(f"Held-out scores on {cases}, real", [text], REAL_HEADER, score_rows(summary))


def published_section() -> Section:
    from ..evaluation.challenge import DISCLAIMER, reference_scores

    sources = "Sources: " + "; ".join(f"{r['method']}: {r['source']} ({r['checked']})" for r in reference_scores())
    return Section("Published challenge results (other, real data: not comparable to the table above)",
                   [f"**{DISCLAIMER}**", sources], PUBLISHED_HEADER, published_rows())


def report_sections(out: Path, summary: dict, overlays: Sequence[Path]) -> list[Section]:
    """Everything the report shows, in order."""
    kind = "synthetic" if summary["synthetic"] else "real"
    t = summary["timings_s"]
    budget = summary["config"].get("time_budget")
    intro = (f"Trained `{summary['config']['model']}` ({summary['config']['preset']})"
             + (f" for a {budget:g}-minute budget" if budget else "") + f" on"
             f" {len(summary['train_cases'])} {kind} cases, predicted {len(summary['heldout_cases'])} held-out"
             f" {kind} cases on {summary['device']}. Total {t['total']:.0f} s (training {t['train']:.0f} s,"
             f" prediction {t['predict']:.0f} s).")
    scores = score_section(summary)
    scores.images.append(("evaluation/boxplots.png", "box plots; per case: evaluation/metrics.csv"))
    rel = [p.relative_to(out).as_posix() for p in overlays]
    sections = [Section("brats_seg quickstart report", [intro]), scores,
                Section("Training curves", images=[("run/curves.png", "training curves")]),
                Section("Held-out cases (reference | prediction)", images=[(r, Path(r).stem) for r in rel])]
    if not summary["synthetic"]:
        sections.append(published_section())
    return sections


# --------------------------------------------------------------------------- rendering


def render_markdown(sections: Sequence[Section]) -> str:
    lines = []
    for i, s in enumerate(sections):
        lines += [f"{'#' if i == 0 else '##'} {s.heading}", ""]
        lines += [p + "\n" for p in s.paragraphs]
        if s.rows:
            lines += [markdown_table(s.rows, s.header), ""]
        lines += [f"![{caption}]({src})\n" for src, caption in s.images]
    return "\n".join(lines) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(r[h])}</td>" for h in header) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_paragraph(text: str) -> str:
    bold = text.startswith("**") and text.endswith("**")
    body = html.escape(text.strip("*"))
    return f"<p><b>{body}</b></p>" if bold else f"<p>{body}</p>"


def render_html(sections: Sequence[Section]) -> str:
    parts = []
    for i, s in enumerate(sections):
        parts.append(f"<h{1 if i == 0 else 2}>{html.escape(s.heading)}</h{1 if i == 0 else 2}>")
        parts += [_html_paragraph(p) for p in s.paragraphs]
        if s.rows:
            parts.append(_html_table(s.header, s.rows))
        parts += [f'<figure><img src="{html.escape(src)}" alt="{html.escape(cap)}">'
                  f"<figcaption>{html.escape(cap)}</figcaption></figure>" for src, cap in s.images]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px}figure{display:inline-block;margin:4px}img{max-width:100%}")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>brats_seg quickstart</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(out: Path, summary: dict, overlays: Sequence[Path]) -> None:
    """``report.md`` and ``report.html`` (atomic) from the quickstart summary."""
    from ..files import atomic_path

    sections = report_sections(out, summary, overlays)
    for name, text in (("report.md", render_markdown(sections)), ("report.html", render_html(sections))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)


def draw_overlays(cases: Sequence[Case], pred_dir: Path, out_dir: Path) -> list[Path]:
    """One PNG per case: FLAIR with the reference and the prediction in three planes."""
    from ..conventions import detect_scheme
    from ..data.reading.checks import read_label_map
    from ..data.reading.volumes import load_case
    from ..evaluation.overlays import overlay_figure

    paths = []
    for case in cases:
        pred_file = pred_dir / f"{case.case_id}.nii.gz"
        vol = load_case(case, channels=("t2f",))
        scheme = detect_scheme(np.unique(vol.label), hint=case.label_scheme, case_id=case.case_id)
        maps = {"reference": (vol.label, scheme)}
        if pred_file.is_file():
            maps["prediction"] = (read_label_map(pred_file).image.array.astype(np.uint8), scheme)  # checked
        path = out_dir / f"{case.case_id}.png"
        overlay_figure(vol.image[0], maps, path, title=f"{case.case_id} (FLAIR)")
        paths.append(path)
    return paths
