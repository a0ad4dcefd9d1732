"""Unit tests turn every warning into a failure (a leaked file, a deprecated call): they are pure and
fast, so a warning there is ours to fix. The integration suites do not yet: the deploy scripts' daemon
processes (Kafka, fake-gcs-server, the stack's components) outlive their Popen objects, which warns."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).parent
WARNINGS_ARE_ERRORS = pytest.mark.filterwarnings(
    "error",
    # starlette's TestClient warns that it will want httpx2: nothing of ours to change
    "ignore:Using `httpx` with `starlette.testclient` is deprecated",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(UNIT):  # (a conftest's hook sees every collected item)
            item.add_marker(WARNINGS_ARE_ERRORS)
