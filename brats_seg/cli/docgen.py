"""Write the CLI reference of the manual from the argparse parsers, so help and manual cannot drift.

    python -m brats_seg.cli.docgen            # writes docs/reference/cli.md
    python -m brats_seg.cli.docgen --check    # exit 1 if the page is stale

``tests/test_docs.py`` fails when the page in the repository is not what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import COMMANDS, _command_parser, build_parser

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"
WIDTH = 100
REGENERATE = "python -m brats_seg.cli.docgen"


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH, max_help_position=32)
    return parser.format_help().rstrip()


def render() -> str:
    """The whole page: the top-level help, then each command's ``--help``, in :data:`COMMANDS` order."""
    out = ["# CLI reference", "",
           f"Generated from the parsers by `{REGENERATE}`; do not edit by hand (a test fails when it is stale).",
           "", "```text", _help(build_parser()), "```", ""]
    for name, summary in COMMANDS.items():
        out += [f"## {name}", "", summary[0].upper() + summary[1:] + ".", "", "```text",
                _help(_command_parser(name)[0]), "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brats_seg.cli.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/reference/cli.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        stale = not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text
        if stale:
            print(f"{PAGE} is stale: run `{REGENERATE}`", file=sys.stderr)
        return int(stale)
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    print(PAGE)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
