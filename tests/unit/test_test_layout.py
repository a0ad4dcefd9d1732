"""The suite's own layout: pytest imports a test module outside a package by its basename
(rootdir-relative "prepend" mode), so two such files with the same name in different directories
break collection of the whole suite, while each directory run alone still passes. This catches it in
any run that includes tests/unit."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    """The name pytest imports the file as: its basename, qualified by the packages around it."""
    parts = [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists():
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts)


def test_every_test_module_has_a_name_of_its_own() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        where[module_name(path)].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not clashes, f"rename one of each (or put it in a package): {clashes}"
