"""The exceptions of brats_seg.

Every error a user can cause is a :class:`BratsSegError` whose message names the
file or case and says what is wrong in plain words. The CLI prints that one
line and exits with status 2 (a traceback only with ``--debug``). A batch goes on past a
bad case; :class:`BatchOutcome` is how every batch (preprocess, predict, prepare, segment)
says which cases went through and why the others did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BratsSegError(Exception):
    """Base class: bad input, bad configuration, or a refused file."""


class CaseError(BratsSegError):
    """A case (or one of its files) is unreadable, incomplete or inconsistent."""


class ConfigError(BratsSegError):
    """A configuration value is invalid (unknown model, bad patch size, ...)."""


class CheckpointError(BratsSegError):
    """A checkpoint is not ours, is corrupt, or needs a pickle to load."""


class MissingExtraError(BratsSegError):
    """An optional dependency is not installed; the message names the ``setup.cfg`` extra that brings it."""


def require(module: str, extra: str, purpose: str):
    """Import and return ``module``, an optional dependency; when it is not installed, raise
    :class:`MissingExtraError`: ``{purpose} needs {module}: pip install 'brats_seg[{extra}]'``."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None:
        raise MissingExtraError(f"{purpose} needs {module}: pip install 'brats_seg[{extra}]'")
    return importlib.import_module(module)


@dataclass
class BatchOutcome:
    """How a batch of cases ended, the one type for it.

    ``done``: case ids that went through, in order (``results``: what each gave, where the batch
    gives something, e.g. a prepared case); ``skipped``: nothing to do (up to date); ``failed``:
    case id -> one line naming the case and the problem; ``seconds``: per case done; ``flagged``:
    cases done whose prediction is unsure (case id -> one line, :mod:`brats_seg.inference.confidence`).
    """

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    flagged: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def succeed(self, case_id: str, result: Any = None, seconds: float | None = None) -> None:
        self.done.append(case_id)
        if result is not None:
            self.results[case_id] = result
        if seconds is not None:
            self.seconds[case_id] = seconds

    def fail(self, case_id: str, reason: str) -> None:
        self.failed[case_id] = reason

    def merge(self, other: BatchOutcome) -> None:
        """Add ``other``'s cases (another process's share) to this outcome."""
        self.done += other.done
        self.skipped += other.skipped
        self.failed.update(other.failed)
        self.seconds.update(other.seconds)
        self.results.update(other.results)
        self.flagged.update(other.flagged)
