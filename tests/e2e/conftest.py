"""The whole stack end to end: real Kafka, PostgreSQL, podman and local workers, through the HTTP API.

Each module gets its own stack (own SQUALL_HOME, topic prefix, database and port) on the session's
secured Kafka broker (a principal per role, TLS for workers, ACLs: as `squall up` runs its own) and
PostgreSQL server, started with the same code as `squall up`; the fault drill runs its own broker
and PostgreSQL, to kill them. Workers are isolated hosts by default (e2e_harness.py); the session
starts and ends by sweeping worker hosts, namespaces and veths that stacks of this or an earlier
run left behind (deploy/worker_hosts.sweep_stale), so a failed test leaves none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from e2e_harness import StackClient, start_secured_stack, stop_stack

from tests.conftest import SecureKafka


@pytest.fixture(scope="module")
def e2e_stack(secure_kafka: SecureKafka, pg_url: str, podman_ready: None) -> Iterator[StackClient]:
    client = start_secured_stack(secure_kafka, pg_url, workers=1, worker_cores=2)
    try:
        yield client
    finally:
        stop_stack(client)


@pytest.fixture(scope="session", autouse=True)
def worker_hosts_swept() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    from deploy.fleet_lan import FleetLan
    from deploy.worker_hosts import sweep_stale

    sweep_stale()
    yield
    sweep_stale()  # stacks are down and their homes gone: whatever is left of their hosts goes
    FleetLan().sweep()


@pytest.fixture(scope="session")
def podman_ready() -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make podman` (deploy/podman/setup.sh) first")
