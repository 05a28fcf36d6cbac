"""Imports point down (STYLE.md 14): no import cycle among backend's modules, counting the imports
inside functions too, and only the app factory reaches the Api and only the Api the routes."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (importer, imported) -> line of the import in the importer
Graph = dict[tuple[str, str], int]


def _modules(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import of `name` runs: the longest known prefix (`a.b.attr` is `a.b`)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path, package: str) -> Graph:
    """Every import of one of the package's modules by another, at any depth of the code.

    `from a.b import c` imports the module `a.b.c` when there is one, else `a.b`. The packages
    above an imported module run first anyway and are not counted, or every `__init__` that
    imports its own modules would be a cycle.
    """
    modules = _modules(root, package)
    graph: Graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here[: len(here) - node.level + 1], *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                imported = _known(target, modules)
                if imported is not None:
                    graph.setdefault((name, imported), node.lineno)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """A shortest cycle through each strongly connected component of more than one module, and
    each module that imports itself: [a, b, ..., a]."""
    edges: dict[str, set[str]] = {}
    for importer, imported in graph:
        edges.setdefault(importer, set()).add(imported)

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for following in edges.get(todo.pop(), ()):
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return seen

    def shortest_cycle(start: str) -> list[str]:
        came_from: dict[str, str] = {}
        queue = deque([start])
        while True:
            current = queue.popleft()
            for following in sorted(edges.get(current, ())):
                if following == start:
                    path = [current]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*path[::-1], start]
                if following not in came_from:
                    came_from[following] = current
                    queue.append(following)

    reach = {module: reachable(module) for module in edges}
    found, reported = [], set()
    for module in sorted(edges):
        if module in reach[module] and module not in reported:
            reported |= {other for other in reach[module] if module in reach.get(other, ())}
            found.append(shortest_cycle(module))
    return found


def _describe(cycle: list[str], graph: Graph) -> str:
    steps = [f"{a} -> {b} (line {graph[a, b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return "\n    ".join(steps)


def test_no_import_cycle_among_backend_modules():
    graph = import_graph(ROOT, "backend")
    found = cycles(graph)
    assert not found, "import cycles:\n    " + "\n\n    ".join(_describe(c, graph) for c in found)


def test_only_the_app_factory_imports_the_api_and_only_the_api_a_routes_module():
    graph = import_graph(ROOT, "backend")
    routes = {m for m in _modules(ROOT, "backend") if m.endswith(".routes") or m == "backend.health"}
    wrong = sorted(
        f"{importer} imports {imported} (line {line})"
        for (importer, imported), line in graph.items()
        if (imported == "backend.api" and importer != "backend")
        or (imported in routes and importer != "backend.api")
    )
    assert not wrong, "\n".join(wrong)


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_check_sees_imports_inside_functions_relative_ones_and_submodules(tmp_path):
    _package(
        tmp_path,
        {
            "pkg/__init__.py": "def create():\n    from pkg import api\n",
            "pkg/api.py": "def register():\n    from .dom import routes\n",
            "pkg/dom/__init__.py": "",
            "pkg/dom/routes.py": "import json\nfrom pkg.dom.service import run\nfrom pkg import create\n",
            "pkg/dom/service.py": "from ..dom import models\n",
            "pkg/dom/models.py": "import pkg.dom.models\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert set(graph) == {
        ("pkg", "pkg.api"),
        ("pkg.api", "pkg.dom.routes"),
        ("pkg.dom.routes", "pkg.dom.service"),
        ("pkg.dom.routes", "pkg"),
        ("pkg.dom.service", "pkg.dom.models"),
        ("pkg.dom.models", "pkg.dom.models"),
    }
    assert cycles(graph) == [
        ["pkg", "pkg.api", "pkg.dom.routes", "pkg"],
        ["pkg.dom.models", "pkg.dom.models"],
    ]
