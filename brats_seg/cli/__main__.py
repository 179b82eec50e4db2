"""``python -m brats_seg.cli``: the same as the ``brats-seg`` console script."""

from __future__ import annotations

from . import entry

if __name__ == "__main__":
    entry()
