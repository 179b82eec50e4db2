"""Scoring half of ``recipe_cv.py``: probabilities -> (ensemble) -> 1 mm crop -> postprocessing -> BraTS metrics.

A *row* is ``MEMBERS`` (one variant name, or several joined by ``&``: an ensemble averaging their
probabilities; ``name@steps`` picks a run), scored on the folds given, with ``tta`` 1 or 8 and a
postprocessing rule (:data:`POSTPROCESS`). Reference labels come from the 1 mm cache (the crop box
holds every tumor voxel, so Dice and HD95 equal those of the full volume). Per-case scores are kept
in ``$RECIPE_RUNS/scores`` so tables are cheap to redo::

    python benchmarks/recipe_cv.py score base,s1.5 --folds A,B
    python benchmarks/recipe_cv.py table base,s1.5,base&seed1 --folds A,B --tta 1,8 --pp none,lcc
    python benchmarks/recipe_cv.py cases base,auglight --fold A --pp frac0.1   # per test case
"""

from __future__ import annotations

import json
import time

import numpy as np
import recipe_cv as rc

POSTPROCESS = ("none", "lcc", "et100", "et300", "et1000", "lcc+et300", "frac0.1")
"""``lcc``: keep only the largest whole-tumor component (26-connected; TC/ET outside it go too), nnU-Net's
rule; ``frac0.1``: drop whole-tumor components under 10% of the largest; ``etN``: an ET volume under N
voxels (1 mm) becomes tumor core (nnU-Net's BraTS 2020 rule); ``+`` combines."""

REGIONS = ("WT", "TC", "ET")


def rule_config(rule: str):
    """The package's :class:`~brats_seg.inference.postprocess.PostprocessConfig` for ``rule`` (:data:`POSTPROCESS`)."""
    from brats_seg.inference.postprocess import PostprocessConfig

    settings = {}
    for part in rule.split("+"):
        if part == "lcc":
            settings["wt_component_fraction"] = 1.0
        elif part.startswith("frac"):
            settings["wt_component_fraction"] = float(part[4:])
        elif part.startswith("et"):
            settings["et_min_voxels"] = int(part[2:])
        elif part != "none":
            raise ValueError(f"unknown postprocessing {part!r}")
    return PostprocessConfig(**settings)


def postprocess(regions: np.ndarray, rule: str) -> np.ndarray:
    """Nested masks ``(3, h, w, d)`` bool (WT, TC, ET) after ``rule``, by the package's own postprocessing."""
    from brats_seg.inference.postprocess import postprocess_regions

    return postprocess_regions(regions, rule_config(rule))[0]


def reference(case_id: str):
    """Region masks ``(3, h, w, d)`` on the 1 mm crop, and the spacing."""
    from brats_seg.conventions import labels_to_regions
    from brats_seg.data.preprocessing.cache import load_cached

    case = load_cached(rc.cache_dir(1.0), case_id)
    return labels_to_regions(np.asarray(case.label), case.label_scheme), tuple(case.properties["spacing"])


def member_probs(member: str, fold: str, case_id: str, tta: int) -> np.ndarray:
    """One member's probabilities ``(3, h, w, d)`` float32 resampled (linear) to the 1 mm crop."""
    from brats_seg.data.preprocessing.preprocess import resample

    name, _, steps = member.partition("@")
    run = rc.run_dir(name, fold, int(steps) if steps else None)
    p = np.load(run / "probs" / f"{case_id}_tta{tta}.npy").astype(np.float32)
    props = json.loads((rc.cache_dir(1.0) / f"{case_id}.json").read_text())
    return resample(p, props["cropped_shape"], order=1)


def score_row(members: str, fold: str, tta: int) -> dict:
    """``{case: {rule: {region: [dice, hd95]}}}`` for the cases outside ``fold`` (cached)."""
    from brats_seg.evaluation.metrics import dice, hd95

    path = rc.ROOT / "scores" / f"{members.replace('&', '+')}__{fold}__tta{tta}.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if set(cached.get("rules", [])) >= set(POSTPROCESS):
            return cached["cases"]
    path.parent.mkdir(exist_ok=True)
    out = {}
    t0 = time.perf_counter()
    for case_id in [c for f, ids in rc.FOLDS.items() if f != fold for c in ids]:
        ref, spacing = reference(case_id)
        probs = np.mean([member_probs(m, fold, case_id, tta) for m in members.split("&")], axis=0)
        out[case_id] = {}
        for rule in POSTPROCESS:
            pred = postprocess(probs > 0.5, rule)
            out[case_id][rule] = {r: [round(dice(pred[i], ref[i]), 5), round(hd95(pred[i], ref[i], spacing), 3)]
                                  for i, r in enumerate(REGIONS)}
    path.write_text(json.dumps({"rules": list(POSTPROCESS), "cases": out}))
    print(f"scored {members} fold {fold} tta{tta} in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def train_info(members: str, fold: str, tta: int) -> tuple[int, float]:
    """Training steps of the first member and median network seconds per case (summed over members; CPU
    seconds of the one-thread process where recorded, else wall seconds)."""
    steps, secs = 0, 0.0
    for member in members.split("&"):
        name, _, s = member.partition("@")
        run = rc.run_dir(name, fold, int(s) if s else None)
        done = json.loads((run / "done.json").read_text())
        steps = steps or done["steps"]
        timing = json.loads((run / "timing.json").read_text())
        timing = timing.get(f"tta{tta}_cpu") or timing.get(f"tta{tta}", {})  # CPU seconds where recorded
        secs += float(np.median(list(timing.values()))) if timing else float("nan")
    return steps, secs


def table(rows: list[str], folds: list[str], ttas: list[int], rules: list[str], per_fold: bool = False) -> str:
    """Markdown: mean Dice per region and their mean, median HD95 per region, over every test case of every fold."""
    head = ("| recipe | folds | tta | pp | Dice WT | TC | ET | mean | HD95 med WT | TC | ET | mean HD95 WT"
            " | steps | net s/case |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for members in rows:
        for tta in ttas:
            for rule in rules:
                groups = [[f] for f in folds] if per_fold else [folds]
                for group in groups:
                    res, steps, secs = [], [], []
                    for fold in group:
                        cases = score_row(members, fold, tta)
                        res += [cases[c][rule] for c in cases]
                        s, t = train_info(members, fold, tta)
                        steps.append(s)
                        secs.append(t)
                    dice = {r: np.mean([c[r][0] for c in res]) for r in REGIONS}
                    hd = {r: np.median([c[r][1] for c in res]) for r in REGIONS}
                    mean_hd_wt = np.mean([c["WT"][1] for c in res])
                    lines.append(
                        f"| {members} | {','.join(group)} | {tta} | {rule} | "
                        + " | ".join(f"{dice[r]:.3f}" for r in REGIONS) + f" | {np.mean(list(dice.values())):.3f} | "
                        + " | ".join(f"{hd[r]:.1f}" for r in REGIONS) + f" | {mean_hd_wt:.1f}"
                        + f" | {'/'.join(map(str, sorted(set(steps))))} | {np.nanmean(secs):.1f} |")
    return "\n".join(lines)


def fold_ensemble(name: str, folds: list[str], tta: int, rules: list[str]) -> str:
    """Markdown: the models of ``name`` trained on each of ``folds``, alone and averaged, scored on the cases
    none of them trained on (e.g. A,B -> the 8 cases of C and D)."""
    from brats_seg.evaluation.metrics import dice, hd95

    test = [c for f, ids in rc.FOLDS.items() if f not in folds for c in ids]
    rows = {**{f: [f] for f in folds}, "&".join(folds): folds}
    res: dict = {(k, r): [] for k in rows for r in rules}
    for case_id in test:
        ref, spacing = reference(case_id)
        probs = {f: member_probs(name, f, case_id, tta) for f in folds}
        for key, members in rows.items():
            mask = np.mean([probs[f] for f in members], axis=0) > 0.5
            for rule in rules:
                pred = postprocess(mask, rule)
                res[key, rule].append([(dice(pred[i], ref[i]), hd95(pred[i], ref[i], spacing)) for i in range(3)])
    lines = [f"| {name} trained on | tta | pp | test cases | Dice WT | TC | ET | mean | HD95 med WT |",
             "|---" * 9 + "|"]
    for (key, rule), scores in res.items():
        d = np.mean([[s[i][0] for i in range(3)] for s in scores], axis=0)
        lines.append(f"| {key} | {tta} | {rule} | {len(test)} | " + " | ".join(f"{v:.3f}" for v in d)
                     + f" | {d.mean():.3f} | {np.median([s[0][1] for s in scores]):.1f} |")
    return "\n".join(lines)


def cases_table(rows: list[str], fold: str, tta: int, rule: str) -> str:
    """Markdown: per test case of ``fold``, its whole-tumor volume (mL) and each row's Dice WT/TC/ET and HD95 WT."""
    head = "| case | WT mL | " + " | ".join(f"{m} Dice WT / TC / ET, HD95 WT" for m in rows) + " |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    scores = {m: score_row(m, fold, tta) for m in rows}
    for case_id in scores[rows[0]]:
        ref, spacing = reference(case_id)
        cells = []
        for m in rows:
            s = scores[m][case_id][rule]
            cells.append(" / ".join(f"{s[r][0]:.2f}" for r in REGIONS) + f", {s['WT'][1]:.1f}")
        lines.append(f"| {case_id} | {ref[0].sum() * np.prod(spacing) / 1000:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_score_commands(sub) -> None:
    p = sub.add_parser("cases", help="per-case scores of rows on one fold's test cases")
    p.add_argument("rows")
    p.add_argument("--fold", default="A", help="the fold trained on")
    p.add_argument("--tta", type=int, default=1)
    p.add_argument("--pp", default="frac0.1")
    p = sub.add_parser("fold-ensemble", help="the fold models alone and averaged, on the cases none trained on")
    p.add_argument("name")
    p.add_argument("--folds", default="A,B")
    p.add_argument("--tta", type=int, default=1)
    p.add_argument("--pp", default="none,lcc")
    for cmd in ("score", "table"):
        p = sub.add_parser(cmd)
        p.add_argument("rows", help="comma-separated rows; '&' joins ensemble members; name@steps picks a run")
        p.add_argument("--folds", default="A,B")
        p.add_argument("--tta", default="1,8")
        p.add_argument("--pp", default="none,lcc")
        p.add_argument("--per-fold", action="store_true")


def run_score_command(args) -> None:
    if args.cmd == "fold-ensemble":
        print(fold_ensemble(args.name, args.folds.split(","), args.tta, args.pp.split(",")))
        return
    if args.cmd == "cases":
        print(cases_table(args.rows.split(","), args.fold, args.tta, args.pp))
        return
    rows, folds = args.rows.split(","), args.folds.split(",")
    ttas, rules = [int(t) for t in args.tta.split(",")], args.pp.split(",")
    if args.cmd == "score":
        for members in rows:
            for fold in folds:
                for tta in ttas:
                    score_row(members, fold, tta)
    text = table(rows, folds, ttas, rules, args.per_fold)
    print(text)
    out = rc.ROOT / "tables" / f"{time.strftime('%H%M%S')}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


__all__ = ["cases_table", "postprocess", "score_row", "table", "POSTPROCESS"]
