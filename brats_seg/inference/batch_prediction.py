"""Predicting many cases: output naming, writing, failures, and sharding over processes.

:func:`predict_cases` runs a :class:`~.predictor.Predictor` over a list of cases and
writes per case (all atomically; a failing case leaves no file behind):

* ``OUT/{case_id}.nii.gz`` (``name_format``): uint8 labels with the input's affine,
  header and shape, as the BraTS submission expects;
* optionally ``OUT/{case_id}_probabilities.nii.gz`` (H, W, D, G: the model's output groups, WT, TC, ET
  by default; the sidecar's ``result.model_outputs`` names others) and
  ``OUT/{case_id}_uncertainty.nii.gz`` (H, W, D, G);
* ``OUT/{case_id}.json``: every setting used, inputs, outputs, timing, the case's intensity
  statistics against the training range (``intensity``) and how sure the prediction is
  (``confidence``: scores, thresholds, ``flagged``; :mod:`.confidence`).

A bad case (mismatched modality, corrupt file, sequences no member was trained
without) is reported in one line and skipped. A case lacking sequences is given to each
member as a subset it was trained for (:mod:`.missing_sequences`); only the files used are read,
the sidecar's ``sequences`` says which were used and which filled, and members left out
are noted on ``log``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes cases ``rank::world``
(:func:`shard`) and writes its own; after a barrier rank 0 writes ``OUT/summary.json``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.reading.cases import Case, CaseVolumes
from ..data.reading.image_io import write_image, write_label
from ..data.reading.volumes import load_case
from ..devices import DistEnv, dist_env  # noqa: F401 (dist_env: part of this module's API)
from ..errors import BatchOutcome, BratsSegError
from ..files import atomic_path
from .confidence import one_line
from .predictor import Prediction, Predictor

DEFAULT_NAME_FORMAT = "{case_id}.nii.gz"


# --------------------------------------------------------------------------- processes

def join_process_group(env: DistEnv, device) -> None:
    """Under torchrun (``env.world`` > 1) join the process group: NCCL on CUDA, gloo on the CPU."""
    import torch.distributed as dist

    if env.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def leave_process_group(env: DistEnv) -> None:
    """Leave the process group :func:`join_process_group` joined (nothing for one process)."""
    if env.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def shard(items: Sequence, rank: int, world: int) -> list:
    """The items process ``rank`` of ``world`` takes: every ``world``-th, starting at ``rank``."""
    return list(items[rank::world])


# --------------------------------------------------------------------------- names

def sanitize_case_id(case_id: str) -> str:
    """A case id safe as a file name: only letters, digits, ``._-`` (others, and ``..``, become
    ``_``); no leading dot, never empty, so no output can land outside the output folder."""
    safe = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", str(case_id))
    safe = re.sub(r"_{2,}", "_", safe).lstrip("._")
    return safe or "case"


def output_paths(out: Path, case_id: str, name_format: str = DEFAULT_NAME_FORMAT) -> dict[str, Path]:
    """Where a case's outputs go; raises :class:`BratsSegError` if one would leave ``out``."""
    safe = sanitize_case_id(case_id)
    try:
        name = name_format.format(case_id=safe)
    except (KeyError, IndexError, ValueError) as e:
        raise BratsSegError(f"--name-format {name_format!r}: only {{case_id}} may be used ({e})") from None
    base = out.resolve()
    paths = {"labels": base / name, "probabilities": base / f"{safe}_probabilities.nii.gz",
             "uncertainty": base / f"{safe}_uncertainty.nii.gz", "sidecar": base / f"{safe}.json"}
    for p in paths.values():
        resolved = p.resolve()
        if base not in resolved.parents:
            raise BratsSegError(f"case {case_id!r}: output {resolved} would be outside {base}")
    if not paths["labels"].name.endswith((".nii.gz", ".nii")):
        raise BratsSegError(f"--name-format {name_format!r} must end in .nii.gz or .nii")
    return paths


def _input_files(case: Case) -> set[Path]:
    files = set(case.images.values()) | ({case.label} if case.label else set())
    return {Path(f).resolve() for f in files}


def plan_outputs(cases: Sequence[Case], out: Path, name_format: str,
                 protected: Sequence[Path] = ()) -> dict[str, dict[str, Path]]:
    """Output paths of every case, checked before any work: no output overwrites an input,
    lands in a case's own folder or a ``protected`` one (the dataset folder), or collides
    with another case's."""
    inputs = set().union(*(_input_files(c) for c in cases)) if cases else set()
    folders = {f.parent for c in cases for f in _input_files(c)} | {Path(p).resolve() for p in protected}
    base = out.resolve()
    if base in folders:
        raise BratsSegError(f"--out {out} is an input folder; choose another folder (inputs are never overwritten)")
    plan, taken = {}, {}
    for case in cases:
        paths = output_paths(out, case.case_id, name_format)
        for p in paths.values():
            if p in inputs:
                raise BratsSegError(f"case {case.case_id}: output {p} is an input file; choose another --out")
            if p in taken:
                raise BratsSegError(f"cases {taken[p]} and {case.case_id} would both write {p}")
            taken[p] = case.case_id
        plan[case.case_id] = paths
    return plan


# --------------------------------------------------------------------------- one case

@dataclass
class OutputOptions:
    """What to write besides the labels (probability and uncertainty maps are float32 NIfTI:
    nibabel cannot write float16)."""

    name_format: str = DEFAULT_NAME_FORMAT
    probabilities: bool = False
    uncertainty: bool = False


def write_prediction(pred: Prediction, reference, paths: dict[str, Path], options: OutputOptions,
                     sidecar: dict[str, Any]) -> list[Path]:
    """Write one case's files; on any failure remove the ones already written and re-raise."""
    maps = {"probabilities": pred.probabilities if options.probabilities else None,
            "uncertainty": pred.uncertainty if options.uncertainty else None}
    written: dict[str, Path] = {}
    try:
        written["labels"] = write_label(paths["labels"], pred.labels, reference)
        for key, array in maps.items():
            if array is not None:  # (3, H, W, D) -> (H, W, D, 3): NIfTI keeps the spatial axes first
                written[key] = write_image(paths[key], np.moveaxis(array, 0, -1).astype(np.float32), reference)
        sidecar = {**sidecar, "outputs": {k: str(p) for k, p in written.items()}}
        with atomic_path(paths["sidecar"]) as tmp:
            tmp.write_text(json.dumps(sidecar, indent=1, default=str))
        written["sidecar"] = paths["sidecar"]
    except BaseException:
        for p in written.values():
            p.unlink(missing_ok=True)
        raise
    return list(written.values())


def read_case(predictor: Predictor, case: Case) -> CaseVolumes:
    """The volumes of the sequences the predictor will use; which ones is decided from the file list
    first, so a case no member can take is refused without reading it."""
    return load_case(case, predictor.plan(case.modalities, case.case_id).used, with_label=False)


def predict_case(predictor: Predictor, case: Case, paths: dict[str, Path], options: OutputOptions,
                 label_scheme: str | None = None, vol: CaseVolumes | None = None) -> dict[str, Any]:
    """Load (unless ``vol`` is given), predict and write one case; returns its sidecar record."""
    if vol is None:
        vol = read_case(predictor, case)
    pred = predictor.predict(vol, label_scheme=label_scheme, available=case.modalities)
    from .. import __version__

    sequences = pred.info["sequences"]
    sidecar = {
        "case_id": case.case_id,
        "inputs": {m: str(case.images[m]) for m in sequences["used"]},
        "sequences": sequences,
        "input_shape": list(vol.reference.shape[:3]),
        "label_scheme": pred.info["label_scheme"],
        "name_format": options.name_format,
        "settings": predictor.settings(),
        "result": pred.info,
        "intensity": pred.info["intensity"],
        "confidence": pred.info["confidence"],
        "brats_seg": __version__,
    }
    write_prediction(pred, vol.reference, paths, options, sidecar)
    return sidecar


# --------------------------------------------------------------------------- many cases

def _summary_part(report: BatchOutcome) -> dict[str, Any]:
    """The report as ``summary.json`` holds it (``written``: the cases done)."""
    return {"written": report.done, "failed": report.failed, "seconds": report.seconds, "flagged": report.flagged}


def _one_line(case_id: str, e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else ""
    if not isinstance(e, BratsSegError):
        msg = f"{e.__class__.__name__}: {msg}"
    return msg if msg.startswith(f"case {case_id}") or case_id in msg else f"case {case_id}: {msg}"


def predict_cases(predictor: Predictor, cases: Sequence[Case], out: str | Path, options: OutputOptions | None = None,
                  *, label_scheme: str | None = None, progress: bool = True, env: DistEnv | None = None,
                  protected: Sequence[Path] = (), log=sys.stderr) -> BatchOutcome:
    """Predict this process's share of ``cases`` into ``out``; see the module docstring.

    Output paths are planned (and checked, see :func:`plan_outputs`) for all cases before
    any work. The next case is read in a background thread while the current one is
    predicted (decompressing four .nii.gz volumes takes longer than a GPU prediction).
    Failures are printed one line each to ``log`` (None: not printed) as they happen and collected in
    the report. Cases are read through the checks of ``brats-seg check`` (``load_case``).
    """
    from tqdm.auto import tqdm

    options = options or OutputOptions()
    out = Path(out)
    env = env or DistEnv()
    plan = plan_outputs(cases, out, options.name_format, protected)
    out.mkdir(parents=True, exist_ok=True)
    mine = shard(cases, env.rank, env.world)
    report = BatchOutcome()
    bar = tqdm(total=len(mine), desc="predict", unit="case", disable=not progress or env.rank != 0)
    with ThreadPoolExecutor(max_workers=1) as reader:
        loading = {}

        def prefetch(i: int) -> None:
            if i < len(mine):
                loading[i] = reader.submit(read_case, predictor, mine[i])

        prefetch(0)
        for i, case in enumerate(mine):
            prefetch(i + 1)
            t0 = time.perf_counter()
            try:
                vol = loading.pop(i).result()
                sidecar = predict_case(predictor, case, plan[case.case_id], options, label_scheme, vol=vol)
                for left in sidecar["sequences"]["left_out"]:
                    print(f"brats-seg predict: note: case {case.case_id}: {left['name']} left out: {left['reason']}",
                          file=log or sys.stderr)  # also for one case: the prediction stands
            except Exception as e:  # one bad case never stops the others
                report.fail(case.case_id, _one_line(case.case_id, e))
                if log is not None:
                    print(f"brats-seg predict: {report.failed[case.case_id]}", file=log)
            else:
                report.succeed(case.case_id, seconds=round(time.perf_counter() - t0, 3))
                if sidecar["confidence"]["flagged"]:
                    report.flagged[case.case_id] = one_line(case.case_id, sidecar["confidence"])
            bar.update(1)
    bar.close()
    return report


def write_summary(out: str | Path, report: BatchOutcome, env: DistEnv, settings: dict[str, Any]) -> BatchOutcome:
    """Write ``OUT/summary.json``; under torchrun every rank writes its part, rank 0 merges
    them after a barrier. Returns the merged report (on rank 0; the own part elsewhere)."""
    out = Path(out)
    if env.world > 1:
        import torch.distributed as dist

        part = out / f".summary.rank{env.rank}.json"
        with atomic_path(part) as tmp:
            tmp.write_text(json.dumps(_summary_part(report)))
        dist.barrier()
        if env.rank != 0:
            return report
        merged = BatchOutcome()
        for r in range(env.world):
            p = out / f".summary.rank{r}.json"
            d = json.loads(p.read_text())
            merged.merge(BatchOutcome(done=d["written"], failed=d["failed"], seconds=d["seconds"],
                                      flagged=d.get("flagged", {})))
            p.unlink()
        report = merged
    summary = {"cases": len(report.done) + len(report.failed), **_summary_part(report), "processes": env.world,
               "settings": settings}
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    return report
