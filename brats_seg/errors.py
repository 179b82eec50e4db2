"""The exceptions of brats_seg.

Every error a user can cause is a :class:`BratsSegError` whose message names the
file or case and says what is wrong in plain words. The CLI prints that one
line and exits with status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations


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
