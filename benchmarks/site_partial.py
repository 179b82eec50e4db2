"""The site experiment's table from the folds a run has finished so far (a run still training, or stopped).

``brats-seg experiment transfer --source-data ... --target-data ...`` writes its table only at the end.
This scores the finished arms of a run folder the way :func:`brats_seg.experiments.site.run_site` does
(``source_only`` and ``tent`` on every target case and the held-out source cases; each fold's arm on its
held-out target case; fold 0's arms on the held-out source cases), and writes ``results.{csv,md,png}``
and ``per_case.csv`` into ``--out`` (never into the run folder; ``OUT/scores.json`` keeps each
checkpoint's scores, so a later call scores only the folds finished since). Training seconds come from each arm's
``arm.json`` (the source training added to the fine-tuned arms, as the experiment does)::

    OMP_NUM_THREADS=1 python benchmarks/site_partial.py /work/results/site_cpu --out /work/results/h22/site_partial \\
        --source-data ../shared/data/brats2018 ../shared/data/brats2021 --target-data ../shared/data/ssa --preset cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brats_seg.experiments import site
from brats_seg.experiments.heldout_scores import CaseScore, score_checkpoints
from brats_seg.experiments.tables import write_csv, write_results


def seconds(run: Path) -> float:
    return float(json.loads((run / "arm.json").read_text())["train_seconds"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--out", required=True)
    parser.add_argument("--source-data", nargs="+", required=True)
    parser.add_argument("--target-data", nargs="+", required=True)
    parser.add_argument("--preset", default="cpu")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(1)
    cfg, run, out = site.PRESETS[args.preset], Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sites = site.split_sites(args.source_data, args.target_data, cfg)
    done = {arm: site.Trained() for arm in cfg.arms}
    source_s = seconds(run / "runs" / "source")

    memo_file = out / "scores.json"  # (checkpoint, case) -> scores: a later call scores only new folds
    memo = json.loads(memo_file.read_text()) if memo_file.is_file() else {}

    def score(ckpt, cases):
        todo = [c for c in cases if f"{ckpt}|{c.case_id}" not in memo]
        for s in score_checkpoints([ckpt], todo, overlap=cfg.source.overlap, device="cpu") if todo else []:
            memo[f"{ckpt}|{s.case_id}"] = {"case_id": s.case_id, "metrics": s.metrics, "seconds": s.seconds,
                                           "scheme": s.scheme, "ref_scheme": s.ref_scheme}
            memo_file.write_text(json.dumps(memo))
        return [CaseScore(**memo[f"{ckpt}|{c.case_id}"]) for c in cases]

    fold_arms = [a for a in cfg.arms if a not in ("source_only", "tent")]
    folds = []  # the held-out target case of every fold whose arms have all finished
    for k, held in enumerate(sites.target):
        if not all((run / "runs" / f"{arm}-fold{k}" / "arm.json").is_file() for arm in fold_arms):
            break
        folds.append(held)
    source_ckpt = run / "runs" / "source" / "checkpoints" / "best.pt"
    done["source_only"] = site.Trained(score(source_ckpt, folds), score(source_ckpt, sites.source_test), source_s)
    if "tent" in cfg.arms and (run / "runs" / "tent.pt").is_file():
        done["tent"] = site.Trained(score(run / "runs" / "tent.pt", folds),
                                    score(run / "runs" / "tent.pt", sites.source_test), source_s,
                                    "seconds: the source's (TENT's own not recorded outside the run)")
    for k, held in enumerate(folds):
        for arm in fold_arms:
            folder = run / "runs" / f"{arm}-fold{k}"
            ckpt = folder / "checkpoints" / "best.pt"
            done[arm].target += score(ckpt, [held])
            done[arm].seconds += seconds(folder)
            if k == 0:
                done[arm].source = score(ckpt, sites.source_test)
    for arm in site.FINETUNED:
        if arm in done:
            done[arm].seconds += source_s if arm != "synth_finetune" else seconds(run / "runs" / "synth")
    folds = [c.case_id for c in folds]
    rows, case_rows = site.table(done)
    site.plot(rows, out / "results.png")
    write_csv(out / "per_case.csv", case_rows, tuple(case_rows[0]))
    notes = [f"partial: folds finished {len(folds)} of {len(sites.target)} (held-out target cases: {', '.join(folds)});"
             f" run folder {run}", "cpu_seconds: the arms' training seconds (source training added to the fine-tuned"
             " arms); folds of fine-tuned arms summed"]
    write_results(out, rows, site.table_columns(site.COLUMNS, rows), title="A new site (finished folds only)",
                  notes=notes, summary={"folds": folds, "rows": rows})
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
