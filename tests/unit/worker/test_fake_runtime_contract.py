"""The fake runtime honours the same contract as podman."""

from __future__ import annotations

import pytest

from tests.unit.worker.runtime_contract import RuntimeContract
from worker.fake_runtime import FakeRuntime


class TestFakeRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self) -> FakeRuntime:
        return FakeRuntime()

    @pytest.fixture
    def image(self) -> str:
        return "localhost/busybox:latest"
