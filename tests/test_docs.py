"""The manual cannot drift from the code: the generated CLI reference is current, and every ``brats-seg``
line of a shell example in README.md and docs/ parses against the real parser (issue 23)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from brats_seg.cli import COMMANDS, _command_parser
from brats_seg.cli.docgen import PAGE, REGENERATE, render

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.S)


def test_cli_reference_is_current():
    assert PAGE.is_file() and PAGE.read_text(encoding="utf-8") == render(), f"{PAGE} is stale: run `{REGENERATE}`"


def shell_examples() -> list[tuple[str, str]]:
    """(page, command line) for each ``brats-seg`` (or ``-m brats_seg.cli``) line of a shell block."""
    found = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():  # continuation lines joined
                line = line.split(" #", 1)[0].strip()
                for marker in ("brats-seg ", "-m brats_seg.cli "):
                    if marker in line:
                        found.append((page.relative_to(ROOT).as_posix(), line[line.index(marker) + len(marker):]))
    return found


def variants(text: str) -> list[list[str]]:
    """The argument lists a documented line stands for: ``[--x 1]`` is optional (both parsed), ``a|b`` after
    a flag or as a command argument is each choice (the first is parsed)."""
    plain = re.sub(r"\[[^\]]*\]", "", text)
    full = text.replace("[", "").replace("]", "")
    out = []
    for line in dict.fromkeys((plain, full)):
        out.append([t.split("|")[0] if "|" in t and not t.startswith("--") else t for t in shlex.split(line)])
    return out


EXAMPLES = shell_examples()


def test_the_manual_has_examples_of_every_command():
    documented = {line.split()[0] for _, line in EXAMPLES}
    assert set(COMMANDS) - documented == set(), f"commands without a shell example: {set(COMMANDS) - documented}"


@pytest.mark.parametrize("page,line", EXAMPLES, ids=[f"{p}:{i}" for i, (p, _) in enumerate(EXAMPLES)])
def test_each_documented_command_line_parses(page, line):
    for argv in variants(line):
        name, rest = argv[0], argv[1:]
        assert name in COMMANDS, f"{page}: `brats-seg {line}`: no command {name!r}"
        parser = _command_parser(name)[0]
        try:
            parser.parse_args(rest)
        except SystemExit as e:
            pytest.fail(f"{page}: `brats-seg {' '.join(argv)}` does not parse (exit {e.code})")
