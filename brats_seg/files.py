"""Atomic file writes: a temporary file beside the target, renamed onto it only when complete.

A process killed at any moment leaves either the old file or the new one, never a
half-written one. Every module that writes results uses these (NIfTI, .npy, JSON,
CSV, YAML, PNG, checkpoints). Sits with ``conventions``/``errors``/``config`` at the
bottom of the import graph: it imports nothing from brats_seg.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

_COMPOUND_SUFFIXES = (".nii.gz", ".tar.gz")


def _format_suffix(name: str) -> str:
    """The suffix writers read the format from (``.nii.gz`` counts as one)."""
    lower = name.lower()
    for suffix in _COMPOUND_SUFFIXES:
        if lower.endswith(suffix):
            return name[-len(suffix):]
    return Path(name).suffix


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary (``.<name>.tmp<pid><suffix>``) keeps the format suffix, so nibabel,
    SimpleITK, numpy and matplotlib write the same format. ``fsync``: flush the data
    to disk before the rename (checkpoints). On failure the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{_format_suffix(path.name)}")
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)
