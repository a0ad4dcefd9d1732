"""Every test fails on a warning (pyproject.toml); unit tests on a leak too (a ResourceWarning: an
unclosed file or socket), since they are pure and fast and a leak there is ours to fix. The other
suites ignore leaks: the deploy scripts' daemons (Kafka, fake-gcs-server, the stack's components)
outlive their Popen objects by design, which warns."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).parent
LEAKS_ARE_ERRORS = pytest.mark.filterwarnings("error::ResourceWarning")  # over pyproject's filters


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(UNIT):  # (a conftest's hook sees every collected item)
            item.add_marker(LEAKS_ARE_ERRORS)
