"""The driver's pure parts import no I/O, clock or randomness: replay and tests depend on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# the scheduling projection's I/O: following the log and storing its snapshots; the rest is the pure fold
SCHEDULING_IO = {"follower.py", "view_snapshots.py"}
PURE = [*sorted(p for p in (REPO / "projections" / "scheduling").glob("*.py") if p.name not in SCHEDULING_IO),
        REPO / "services" / "scheduler" / "plan.py", REPO / "services" / "health" / "detector.py"]
FORBIDDEN = {"asyncio", "time", "random", "secrets", "uuid", "datetime", "os", "socket", "subprocess", "aiokafka",
             "psycopg", "fastavro", "google", "requests", "httpx"}


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(REPO)))
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"
