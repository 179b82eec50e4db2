"""Imports point one way (ARCHITECTURE.md §1): each package imports only the layers below it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "brats_seg"
BASE = {"conventions", "outputs", "errors", "config", "files", "devices"}
ALLOWED = {
    **{name: BASE for name in BASE},
    "data": BASE,
    "models": BASE,
    "checkpoint": BASE | {"models"},
    "evaluation": BASE | {"data"},
    "prepare": BASE | {"data"},
    "importers": BASE | {"data", "models", "checkpoint"},
    "inference": BASE | {"data", "models", "checkpoint", "prepare", "importers"},
    "training": BASE | {"data", "models", "checkpoint", "inference", "evaluation", "importers"},
    "experiments": BASE | {"data", "models", "checkpoint", "inference", "evaluation", "training", "importers"},
    "cli": BASE | {"data", "models", "checkpoint", "inference", "evaluation", "training", "experiments", "prepare",
            "importers"},
}


def _layer(module: str) -> str:
    """``brats_seg.data.reading.image_io`` -> ``data``; the package root's own names (``__version__``) belong to no
    layer."""
    name = module.split(".")[1]
    return "" if name.startswith("__") else name


def _imports(path: Path) -> set[str]:
    """Absolute names of brats_seg modules imported by the file at ``path``."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts[:-1])  # the package the file is in (an __init__ is in its own package)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                targets = [name] if node.module else [f"{name}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
            found.update(t for t in targets if t.startswith("brats_seg."))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("brats_seg."))
    return found


def test_imports_point_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if len(rel.parts) < 2 or rel.parts[1] == "__init__":
            continue  # the lazy public API map may name anything
        layer = rel.parts[1]
        for target in _imports(path):
            other = _layer(target)
            if other and other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{rel}: imports {target} ({layer} may import {', '.join(sorted(ALLOWED[layer]))})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_relative_imports():
    assert "brats_seg.data.reading.image_io" in _imports(PACKAGE / "data" / "cases.py")
    assert "brats_seg.conventions" in _imports(PACKAGE / "data" / "cases.py")
