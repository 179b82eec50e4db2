"""The site experiment's table from the folds a run has finished so far (a run still training, or stopped).

``brats-seg experiment transfer --source-data ... --target-data ...`` writes its table only at the end.
This scores the finished arms of a run folder the way :func:`brats_seg.experiments.site.run_site` does
(``source_only`` and ``tent`` on every target case and the held-out source cases; each fold's arm on its
held-out target case; fold 0's arms on the held-out source cases), and writes ``results.{csv,md,png}``
and ``per_case.csv`` into ``--out`` (never into the run folder). Training seconds come from each arm's
``arm.json`` (the source training added to the fine-tuned arms, as the experiment does)::

    OMP_NUM_THREADS=1 python benchmarks/site_partial.py /work/results/site_cpu --out /work/results/h22/site_partial \\
        --source-data ../shared/data/brats2018 ../shared/data/brats2021 --target-data ../shared/data/ssa --preset cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brats_seg.experiments import site
from brats_seg.experiments.scoring import score_checkpoints
from brats_seg.experiments.tables import write_csv, write_results


def seconds(run: Path) -> float:
    return float(json.loads((run / "arm.json").read_text())["train_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--out", required=True)
    parser.add_argument("--source-data", nargs="+", required=True)
    parser.add_argument("--target-data", nargs="+", required=True)
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cfg, run, out = site.PRESETS[args.preset], Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sites = site.split_sites(args.source_data, args.target_data, cfg)
    done = {arm: site.Trained() for arm in cfg.arms}
    source_s = seconds(run / "runs" / "source")

    def score(ckpt, cases):
        return score_checkpoints([ckpt], cases, overlap=cfg.source.overlap, device="cpu")

    done["source_only"] = site.Trained(score(run / "runs" / "source" / "checkpoints" / "best.pt", sites.target),
                                       score(run / "runs" / "source" / "checkpoints" / "best.pt", sites.source_test),
                                       source_s)
    if (run / "runs" / "tent.pt").is_file():
        done["tent"] = site.Trained(score(run / "runs" / "tent.pt", sites.target),
                                    score(run / "runs" / "tent.pt", sites.source_test), source_s, "TENT seconds not"
                                    " recorded outside the run")
    folds = []
    for k, held in enumerate(sites.target):
        finished = {arm: run / "runs" / f"{arm}-fold{k}" for arm in site.FINETUNED + ("target_only", "pooled")
                    if (run / "runs" / f"{arm}-fold{k}" / "arm.json").is_file()}
        if len(finished) < len(cfg.arms) - 2:
            break  # an unfinished fold: left out whole, so every arm has the same cases
        folds.append(held.case_id)
        for arm, folder in finished.items():
            ckpt = folder / "checkpoints" / "best.pt"
            done[arm].target += score(ckpt, [held])
            done[arm].seconds += seconds(folder)
            if k == 0:
                done[arm].source = score(ckpt, sites.source_test)
    for arm in site.FINETUNED:
        done[arm].seconds += source_s if arm != "synth_finetune" else seconds(run / "runs" / "synth")
    kept = set(folds)
    for arm in ("source_only", "tent"):  # the same target cases as the fold arms
        done[arm].target = [s for s in done[arm].target if s.case_id in kept]
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
