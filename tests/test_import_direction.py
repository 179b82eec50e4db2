"""Imports point one way (ARCHITECTURE.md §1): each package imports only the layers below it, ``data``'s
sub-packages too; no module imports itself back through others (no import circle, lazy imports included);
and module names say what the module holds (no two modules share a name outside the named exceptions)."""

import ast
from collections import Counter
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
# inside data/: sub-packages (and its two top modules) by job, one way
DATA_ALLOWED = {
    "reading": set(),
    "preprocessing": {"reading"},
    "augmentation": {"subsets"},
    "synth": {"reading"},
    "subsets": set(),
    "loaders": {"preprocessing", "augmentation", "subsets"},
}
# names several modules may share: a command's module in cli/ is named after the command, an entry of a
# registry after the entry (model, layout and importer "nnunet"), and "common" is "what this package shares"
SHARED_NAMES = {"__init__", "__main__", "common", "nnunet"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str, depth: int = 1) -> str:
    """``brats_seg.data.reading.image_io`` -> ``data`` (depth 2: ``reading``); the package root's own names
    (``__version__``) belong to no layer."""
    parts = module.split(".")
    name = parts[depth] if len(parts) > depth else ""
    return "" if name.startswith("__") else name


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, typing_only: bool = True) -> set[str]:
    """Absolute names of brats_seg modules (or their members) imported by the file at ``path``, at the top or
    inside functions; ``typing_only=False`` leaves out ``if TYPE_CHECKING:`` blocks (never run)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts[:-1])  # the package the file is in (an __init__ is in its own package)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    if not typing_only:
        skipped = {id(n) for block in ast.walk(tree) if _type_checking(block) for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                targets = [name] if node.module else [f"{name}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
                targets += [f"{node.module}.{a.name}" for a in node.names]
            found.update(t for t in targets if t.startswith("brats_seg."))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("brats_seg."))
    return found


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


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


def test_data_sub_packages_import_one_way():
    wrong = []
    modules = _modules()
    for path in sorted((PACKAGE / "data").rglob("*.py")):
        module = _module(path)
        part = _layer(module, 2)
        if not part:
            continue  # data/__init__
        assert part in DATA_ALLOWED, f"{module}: a part of data/ the import-direction test does not know"
        for target in _imports(path):
            other = _layer(target, 2) if target.startswith("brats_seg.data.") else ""
            if other and other != part and other not in DATA_ALLOWED[part] and (
                    target in modules or target.rpartition(".")[0] in modules):
                wrong.append(f"{module}: imports {target} (data.{part} may import "
                             f"{', '.join(sorted(DATA_ALLOWED[part])) or 'no other part of data'})")
    assert not wrong, "\n".join(wrong)


def _import_graph() -> dict[str, set[str]]:
    """Module -> modules it imports (a ``from pkg import name`` counts for the module ``pkg.name`` when that
    is a module, else for ``pkg``); lazy imports count, ``if TYPE_CHECKING:`` imports do not."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, typing_only=False):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle():
    circles = _cycles(_import_graph())
    assert not circles, "import circles (lazy imports included):\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_module_names_are_unique():
    names = Counter(p.stem for p in PACKAGE.rglob("*.py") if p.parent.name != "cli")
    shared = sorted(n for n, count in names.items() if count > 1 and n not in SHARED_NAMES)
    assert not shared, f"modules sharing a name (say what each holds): {shared}"


def test_the_checker_sees_relative_and_lazy_imports():
    cases = PACKAGE / "data" / "reading" / "cases.py"
    assert "brats_seg.data.reading.image_io" in _imports(cases)
    assert "brats_seg.conventions" in _imports(cases)
    assert "brats_seg.data.reading.checks" in _import_graph()["brats_seg.data.reading.volumes"]
    transfer = "brats_seg.experiments.transfer"
    assert transfer in _imports(PACKAGE / "experiments" / "transfer_inits.py")  # under TYPE_CHECKING
    assert transfer not in _import_graph()["brats_seg.experiments.transfer_inits"]
