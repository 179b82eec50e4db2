"""How a command that reads cases ends (the manual, docs/commands.md): exit 0 when every case went through;
a run given ONE case that failed is bad input (one line, exit 2); a batch goes on past bad cases,
lists every failure at the end on stderr and exits 1."""

from __future__ import annotations

import sys
from collections.abc import Mapping


def refuse_single_case(failed: Mapping[str, str], n_cases: int) -> None:
    """Raise the one failure of a run given one case as a :class:`~brats_seg.errors.CaseError` (exit 2)."""
    from ..errors import CaseError

    if n_cases == 1 and failed:
        raise CaseError(next(iter(failed.values())))


def report_failures(failed: Mapping[str, str], what: str = "failed") -> int:
    """Print ``{what}: <reason>`` for each failed case on stderr; 1 if any, else 0. Reasons name the case."""
    for reason in failed.values():
        print(f"{what}: {reason}", file=sys.stderr)
    return 1 if failed else 0
