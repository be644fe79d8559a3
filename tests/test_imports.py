"""The package's import graph, read from the source: no module imports one that imports it back.

Every ``import`` and ``from ... import`` statement of every module under ``sepbench/`` counts —
at module level, inside functions and classes (a deferred import is still a dependency), in
absolute and relative form. ``from a.b import c`` is an edge to the module ``a.b.c`` when that
is a module, else to ``a.b``. Only imports under ``if TYPE_CHECKING:`` are left out: they never
run (the lazy package ``sepbench.sweep`` lists its exports there for type checkers only).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sepbench"


def module_names(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package at ``root``."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` (source ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = name.split(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in modules else source)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return {m for m in found if m in modules and m != name and m.split(".")[0] == top}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each given as
    one closed path through it, e.g. ``[a, b, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_closed_path(graph, c) for c in components]


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def test_sepbench_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 50 and "sepbench.sweep.store" in graph["sepbench.sweep.runner"]
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_graph_sees_every_form_of_import(tmp_path: Path) -> None:
    """A cycle made of a deferred relative import, a ``from`` import of a name and a plain
    ``import`` is found and named; an import under TYPE_CHECKING alone makes none."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.c import thing\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("from pkg.sub import thing\n")
    (pkg / "sub" / "c.py").write_text("import pkg.a\nthing = 1\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n import pkg.e\n"
    )
    (pkg / "e.py").write_text("import pkg.d\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub"}
    assert graph["pkg.d"] == set() and graph["pkg.e"] == {"pkg.d"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub", "pkg.sub.c", "pkg.a"]]


LAYERS = {"cli": 3, "mainjob": 2, "docgen": 2, "report": 1}
"""Packages above the domain packages (rank 0: tasks, theory, constructions, models, training,
sweep, ...): ``report`` reads them, ``docgen`` and ``mainjob`` use ``report``, the CLI calls
everything. ``python -m sepbench`` (``sepbench.__main__``) is the CLI's entry."""


def _rank(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if "." in module else ""
    part = "cli" if part == "__main__" else part
    return part, LAYERS.get(part, 0)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for module, targets in import_graph(PACKAGE).items():
        own, rank = _rank(module)
        for target in sorted(targets):
            other, other_rank = _rank(target)
            if other_rank > rank or (other_rank == rank > 0 and other != own):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports upwards: " + "; ".join(upward)
