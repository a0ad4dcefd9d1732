"""The podman adapter passes the ContainerRuntime contract (the same suite as the fake)."""

from __future__ import annotations

import pytest

from tests.integration.worker.conftest import BUSYBOX
from tests.unit.worker.runtime_contract import RuntimeContract

pytestmark = pytest.mark.podman


class TestPodmanRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self, podman):
        return podman

    @pytest.fixture
    def image(self) -> str:
        return BUSYBOX
