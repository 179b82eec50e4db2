"""Several cases in a row: go on past a bad one, report every failure at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BatchOutcome, BratsSegError
from .sequences import ScanSet, ScanSource

BatchReport = BatchOutcome  # ``results``: case id -> prepared (or segmented) case; ``failed``: bad input or QC


def qc_failure(prepared) -> str | None:
    """One line naming the registrations that failed QC (None if it passed)."""
    if prepared.passed:
        return None
    regs = prepared.record["registrations"]
    parts = [f"{k} sharpness {regs[k]['sharpness']:.2f} (NMI {regs[k]['nmi']:.3f})"
             for k in prepared.record["qc"]["failed"]]
    return (f"case {prepared.case_id}: registration failed QC: {', '.join(parts)}; see {prepared.folder / 'qc.png'};"
            " images not written")


def run_cases(sources: Sequence[ScanSource], work: Callable[[ScanSet], Any],
              required: tuple[str, ...] | Callable[[ScanSet], Any] = (), *,
              log: Callable[[str], None] | None = None, strict: bool | None = None) -> BatchOutcome:
    """Read each source, check it has the ``required`` sequences (a tuple, or a function of the
    case that raises :class:`CaseError` to refuse it, e.g. :func:`.segment.required_sequences`),
    print its sequence mapping, run ``work(scans)`` (which returns a result with a ``prepared``
    case or is one). ``strict`` (default: when there is one source): re-raise bad input instead
    of recording it."""
    log = log or (lambda line: print(line, file=sys.stderr))
    strict = len(sources) == 1 if strict is None else strict
    report = BatchReport()
    for source in sources:
        try:
            scans = source.read()
            if callable(required):
                required(scans)
            else:
                scans.require(required)
            log(f"case {scans.case_id}:")
            for line in scans.lines():
                log(f"  {line}")
            result = work(scans)
        except BratsSegError as e:
            if strict:
                raise
            report.fail(source.case_id, str(e))
            continue
        failure = qc_failure(getattr(result, "prepared", result))
        if failure:
            report.fail(source.case_id, failure)
        else:
            report.succeed(source.case_id, result)
    return report
