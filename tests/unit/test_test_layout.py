"""The suite's own layout: pytest imports test modules by basename (rootdir-relative "prepend" mode),
so two test files with the same name in different directories break collection of the whole suite,
while each directory run alone still passes. This catches it in any run that includes tests/unit."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_basename_of_its_own() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        where[path.name].append(str(path.parent.relative_to(TESTS)))
    clashes = {name: dirs for name, dirs in where.items() if len(dirs) > 1}
    assert not clashes, f"rename one of each: {clashes}"
