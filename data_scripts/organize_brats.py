#!/usr/bin/env python
"""Unpack downloaded BraTS archives into one folder and list the cases found.

    python data_scripts/organize_brats.py BraTS2021_Training_Data.tar --out data/brats2021

Archives (.zip, .tar, .tar.gz, .tgz) are extracted safely (no member may land
outside --out); folders are scanned as they are. Every case is then found with
brats_seg's layout discovery and checked for completeness; nothing is
overwritten (an existing file with the same name is left alone and reported).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import zipfile
from pathlib import Path

from brats_seg.data.reading.layouts import discover_cases
from brats_seg.errors import BratsSegError


def _safe_members(names: list[str], out: Path) -> None:
    root = out.resolve()
    for name in names:
        target = (out / name).resolve()
        if root not in target.parents and target != root:
            raise BratsSegError(f"archive member {name!r} would be written outside {out}; refusing the archive")


def extract(archive: Path, out: Path) -> Path:
    """Extract ``archive`` into ``out/<archive stem>``; return that folder."""
    dest = out / archive.name.split(".")[0]
    if dest.exists():
        print(f"{dest} exists: not extracting {archive.name} again", file=sys.stderr)
        return dest
    tmp = out / f".{dest.name}.partial"
    tmp.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _safe_members(z.namelist(), tmp)
            z.extractall(tmp)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            _safe_members(t.getnames(), tmp)
            t.extractall(tmp, filter="data")
    else:
        raise BratsSegError(f"{archive}: not a .zip or .tar archive")
    tmp.rename(dest)  # only a complete extraction gets the final name
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="archives or folders")
    parser.add_argument("--out", type=Path, required=True, help="folder to extract into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for item in args.inputs:
        try:
            folder = extract(item, args.out) if item.is_file() else item
            cases = discover_cases(folder)
            labelled = sum(c.label is not None for c in cases)
            layouts = sorted({c.layout for c in cases})
            print(f"{folder}: {len(cases)} cases ({labelled} labelled), layout {', '.join(layouts)}")
        except BratsSegError as e:
            print(f"{item}: error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
