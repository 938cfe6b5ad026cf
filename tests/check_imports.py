"""No import circle in the package, and no module importing its own package's ``__init__``.

    python tests/check_imports.py harvester [--rooms config,graph,...]

Reads every module with :mod:`ast` (nothing is imported) and draws an edge for every import of
another module of the package: at the top, inside a function, under ``if TYPE_CHECKING:`` alike.
A lazy or type-only import still means neither module can be read or tested without the other,
which is what a circle costs; so they count. ``from . import x`` is an edge to the module ``x``
when there is one; otherwise to the package's ``__init__``, which from inside the package is an
import running back up (the ``__init__`` is the package's face to its users, not a dependency of
its parts). With ``--rooms``, the package's sub-packages in order from the bottom up, it also
names each import of a room above the importer's own: the root's modules are below every room
(what everyone uses), the ``--top`` modules (default ``cli``, ``__main__`` and the package's
``__init__``) above them all. Exits 1 naming each circle (with the file and line of every edge in it) and each
import running back up; 0 when there are none.
"""

from __future__ import annotations

import argparse
import ast
import sys
from itertools import pairwise
from pathlib import Path

Edges = dict[str, dict[str, int]]
"""Module -> imported module -> line of the first such import."""


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under the package directory ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def _base(importer: str, level: int, module: str | None, files: dict[str, Path]) -> str:
    """The module a ``from`` import names, relative imports resolved against the importer."""
    if level == 0:
        return module or ""
    package = importer if _is_package(importer, files) else importer.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


def _known(name: str, files: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is a module of the package."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def edges(files: dict[str, Path]) -> Edges:
    graph: Edges = {name: {} for name in files}
    for importer, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, files) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(importer, node.level, node.module, files)
                targets = [_known(f"{base}.{alias.name}", files) if f"{base}.{alias.name}" in files
                           else _known(base, files) for alias in node.names]
            for target in targets:
                if target is not None and target != importer:
                    graph[importer].setdefault(target, node.lineno)
    return graph


def back_up(graph: Edges, files: dict[str, Path]) -> list[str]:
    """Imports of an enclosing package's ``__init__`` from inside it."""
    return [f"{files[m].as_posix()}:{line}: {m} imports {t} (its own package's __init__: runs back up)"
            for m, targets in graph.items() for t, line in targets.items()
            if _is_package(t, files) and m.startswith(t + ".")]


def circles(graph: Edges) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan), modules in order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    sys.setrecursionlimit(max(1000, 4 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(sorted(g), graph) for g in groups]


def _cycle_in(group: list[str], graph: Edges) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError("a strongly connected group without a circle")


def describe(cycle: list[str], graph: Edges, files: dict[str, Path]) -> str:
    steps = [f"  {a} -> {b}  ({files[a].as_posix()}:{graph[a][b]})" for a, b in pairwise(cycle)]
    return "import circle: " + " -> ".join(cycle) + "\n" + "\n".join(steps)


def rank(module: str, package: str, rooms: list[str], top: set[str]) -> int:
    """Where ``module`` stands: -1 the root's modules, the room's place in ``rooms``, above them the top."""
    parts = module.split(".")
    if module == package or (len(parts) == 2 and parts[1] in top):
        return len(rooms)
    if len(parts) == 2 and parts[1] not in rooms:
        return -1
    return rooms.index(parts[1]) if parts[1] in rooms else len(rooms)


def upward(graph: Edges, files: dict[str, Path], package: str, rooms: list[str], top: set[str]) -> list[str]:
    """Imports of a room above the importer's own, and rooms the order leaves out."""
    present = {m.split(".")[1] for m in files if m.count(".") >= 1 and _is_package(".".join(m.split(".")[:2]), files)}
    problems = [f"room {name!r} is not in --rooms (the order: {', '.join(rooms)})"
                for name in sorted(present - set(rooms))]
    return problems + [
        f"{files[m].as_posix()}:{line}: {m} imports {t}, a room above its own (order: root, {', '.join(rooms)}, top)"
        for m, targets in graph.items() for t, line in targets.items()
        if rank(m, package, rooms, top) < rank(t, package, rooms, top)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tests/check_imports.py", description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--rooms", default="", help="the sub-packages from the bottom up, comma-separated")
    parser.add_argument("--top", default="cli,__main__", help="root modules above every room")
    args = parser.parse_args(argv)
    if not (args.package / "__init__.py").is_file():
        parser.error(f"{args.package}: not a package (no __init__.py)")
    files = modules(args.package)
    graph = edges(files)
    problems = [describe(c, graph, files) for c in circles(graph)] + back_up(graph, files)
    if args.rooms:
        problems += upward(graph, files, args.package.name, args.rooms.split(","), set(args.top.split(",")))
    for problem in problems:
        print(problem, file=sys.stderr)
    count = sum(len(t) for t in graph.values())
    print(f"{len(files)} modules, {count} imports inside the package: "
          + (f"{len(problems)} problem(s)" if problems else "no circle, none running back up"), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
