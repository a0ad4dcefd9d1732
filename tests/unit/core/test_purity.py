"""The pure core performs no I/O and reads no clock or randomness (the core's rule: decisions are functions of the log alone).

Two proofs: importing every events.core module in a fresh interpreter pulls in none of the I/O
libraries, and no module of events/core calls a clock, a random generator or a uuid.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import events.core

CORE_DIR = Path(events.core.__file__).parent
CORE_MODULES = sorted(f"events.core.{p.stem}" for p in CORE_DIR.glob("*.py") if p.stem != "__init__")

IO_PACKAGES = ("aiokafka", "kafka", "psycopg", "psycopg_pool", "podman", "httpx", "aiohttp", "requests",
               "urllib3", "fastapi", "starlette", "uvicorn", "faust", "google", "socket", "asyncio", "sqlite3")

# (module, attribute) pairs whose call makes a result depend on when or where it runs
FORBIDDEN_CALLS = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter"),
                   ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
                   ("os", "urandom"), ("os", "getenv"), ("secrets", "token_hex"), ("secrets", "token_urlsafe")}
FORBIDDEN_MODULES = {"random", "uuid", "secrets"}


def test_core_modules_exist():
    assert "events.core.lifecycle" in CORE_MODULES and "events.core.evolve" in CORE_MODULES


def test_importing_the_core_loads_no_io_library():
    code = ("import json, sys\n"
            f"for m in {CORE_MODULES!r}: __import__(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    offenders = sorted(m for m in loaded if m.split(".")[0] in IO_PACKAGES)
    assert offenders == [], f"events.core pulls in I/O modules: {offenders}"


def _calls(tree: ast.AST) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
            found.append((name, node.func.attr, node.lineno))
    return found


def test_no_clock_randomness_or_uuid_in_core_source():
    problems = []
    for path in sorted(CORE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] in FORBIDDEN_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{path.name}:{node.lineno} imports from {node.module}")
        problems += [f"{path.name}:{line} calls {base}.{attr}()" for base, attr, line in _calls(tree)
                     if (base, attr) in FORBIDDEN_CALLS]
    assert problems == [], "the core must take time and ids as arguments:\n" + "\n".join(problems)


def test_the_scan_would_catch_a_clock_call():
    tree = ast.parse("import time\nx = time.time()\ny = datetime.now()\n")
    assert {(b, a) for b, a, _ in _calls(tree)} == {("time", "time"), ("datetime", "now")}
