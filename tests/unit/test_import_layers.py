"""The import graph points one way (docs/ARCHITECTURE.md, "Layers").

    events  <-  projections  <-  deploy  <-  services
    events  <-  worker       <-  deploy

A package may import only the packages below it: `events` none of the others, `projections` and
`worker` only `events`, `deploy` (Kafka, PostgreSQL, the local stack, releases; it starts the
services by command line, never by import) those three, and `services` (the `squall` CLI among them,
which runs `deploy`) every one but `worker`. Inside a package, two sibling subpackages never import
each other (a cycle); a process's `__main__` is the composition root of its process and imported by
nothing, so what it imports cannot close a cycle.

Every import counts, at module level or inside a function, under TYPE_CHECKING or not: each is an
edge someone has to reason about. The scan reads source with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# what each top-level package may import, besides itself
MAY_IMPORT: dict[str, frozenset[str]] = {
    "events": frozenset(),
    "projections": frozenset({"events"}),
    "worker": frozenset({"events"}),
    "deploy": frozenset({"events", "projections", "worker"}),
    "services": frozenset({"events", "projections", "deploy"}),
}
CHECKED = tuple(MAY_IMPORT)
PROJECT = frozenset({*CHECKED, "schemas", "tests"})


@dataclass(frozen=True)
class Edge:
    path: str  # relative to the repository
    line: int
    importer: str  # dotted module name
    imported: str  # dotted module name as written (relative imports resolved)

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.importer} imports {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, source: str | None = None) -> list[Edge]:
    """Every import of a project module in one file (its source given, or read), with its line."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    importer = module_name(path)
    # the package a relative import is relative to
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    rel = str(path.relative_to(ROOT))
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module else []
            if node.level:
                base = package[: len(package) - (node.level - 1)] + base
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            names = [_module_or_package(base, alias.name) for alias in node.names] if base else []
        else:
            continue
        edges += [Edge(rel, node.lineno, importer, name) for name in dict.fromkeys(names)
                  if name.split(".")[0] in PROJECT]
    return edges


def _module_or_package(base: list[str], name: str) -> str:
    target = ROOT.joinpath(*base, name)
    return ".".join([*base, name]) if target.with_suffix(".py").is_file() or target.is_dir() else ".".join(base)


def project_modules() -> list[Path]:
    return sorted(p for top in CHECKED for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def all_edges() -> list[Edge]:
    return [edge for path in project_modules() for edge in imports_of(path)]


def layer_violations(edges: list[Edge]) -> list[str]:
    found = []
    for edge in edges:
        source, target = edge.importer.split(".")[0], edge.imported.split(".")[0]
        if target != source and target not in MAY_IMPORT[source]:
            found.append(f"{edge}  ({source} must not import {target})")
    return found


def subpackage(module: str) -> str | None:
    """The subpackage (a directory) of a top-level package a module is in, e.g. services.scheduler."""
    parts = module.split(".")
    if len(parts) < 2 or not (ROOT / parts[0] / parts[1]).is_dir():
        return None
    return ".".join(parts[:2])


def sibling_cycles(edges: list[Edge]) -> list[str]:
    """Imports between sibling packages that lie on a cycle of them (of any length)."""
    between: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for edge in edges:
        if edge.importer.endswith(".__main__"):
            continue  # an entry point composes its process; nothing imports it
        a, b = subpackage(edge.importer), subpackage(edge.imported)
        if a and b and a != b and a.split(".")[0] == b.split(".")[0]:
            between[(a, b)].append(edge)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in between:
        graph[a].add(b)
    found = []
    for (a, b), there in sorted(between.items()):
        if a in _reachable(graph, b):
            found += [f"{edge}  ({b} leads back to {a})" for edge in there]
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_import_points_down_the_layers() -> None:
    problems = layer_violations(all_edges())
    assert problems == [], f"{len(problems)} back edge(s):\n" + "\n".join(problems)


def test_no_import_cycle_between_sibling_packages() -> None:
    problems = sibling_cycles(all_edges())
    assert problems == [], f"{len(problems)} import(s) closing a cycle:\n" + "\n".join(problems)


def test_nothing_imports_an_entry_point() -> None:
    """What the cycle check leaves out of a `__main__` is safe only while nothing imports it."""
    problems = [str(e) for e in all_edges() if e.imported.endswith("__main__")]
    assert problems == [], "\n".join(problems)


def test_the_scan_sees_every_kind_of_import() -> None:
    """Relative, function-level and TYPE_CHECKING imports are edges too; the rules catch both kinds."""
    here = ROOT / "worker" / "__layering_probe__.py"
    source = ("from typing import TYPE_CHECKING\n"
              "from .agent import Agent\n"
              "if TYPE_CHECKING:\n    from services import front\n"
              "def f():\n    import projections.db\n")
    tree_edges = imports_of(here, source)
    assert {(e.line, e.imported) for e in tree_edges} == {(2, "worker.agent"), (4, "services.front"),
                                                          (6, "projections.db")}
    assert len(layer_violations(tree_edges)) == 2
    cycle = [Edge("a", 1, "services.scheduler.view", "services.autoscaler.pools"),
             Edge("b", 2, "services.autoscaler.service", "services.scheduler.view"),
             Edge("c", 3, "services.front.__main__", "services.webui.app"),
             Edge("d", 4, "services.webui.app", "services.front.queries")]
    assert [p.split()[0] for p in sibling_cycles(cycle)] == ["b:2", "a:1"]
    longer = [Edge("a", 1, "services.health.m", "services.providers.m"),
              Edge("b", 2, "services.providers.m", "services.jobdata.m"),
              Edge("c", 3, "services.jobdata.m", "services.health.m"),
              Edge("d", 4, "services.jobdata.m", "services.cli.m")]  # leads nowhere back
    assert [p.split()[0] for p in sibling_cycles(longer)] == ["a:1", "c:3", "b:2"]


