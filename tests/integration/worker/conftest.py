"""Fixtures for the worker's tests against real podman and the GCS-API server (the podman service,
job networks and runtime fixtures themselves are in tests/podman_support.py, offered by tests/conftest.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.unit.worker.factories import MIB
from worker.attempt import AttemptServices, WorkerLimits
from worker.clock import SystemClock
from worker.records import AttemptRecords
from worker.scratch import ScratchManager
from worker.storage import JobFiles, SharedStore


@pytest.fixture
def instance_name() -> str:
    return f"it-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def worker_store(gcs_store, bucket_name: str):  # type: ignore[no-untyped-def]
    """The session's GCS-API server with this test's squall bucket and data bucket created:
    (store, system bucket, data bucket)."""
    data = f"{bucket_name}-data"
    for name in (bucket_name, data):
        await gcs_store.create_bucket(name)
    return gcs_store, bucket_name, data


@pytest.fixture
def services(podman, tmp_path: Path, instance_name: str, worker_store) -> AttemptServices:  # type: ignore[no-untyped-def]
    """Job files and records in the session's GCS-API server (its buckets unique to the test)."""
    store, system, data = worker_store
    services = AttemptServices(
        instance_name=instance_name, runtime=podman, scratch=ScratchManager(tmp_path / "scratch", mode="loop"),
        files=JobFiles(SharedStore(store)), records=AttemptRecords(store, system, tmp_path / "spool"),
        clock=SystemClock(),
        limits=WorkerLimits(pids_limit=64, scratch_per_core_bytes=64 * MIB, scratch_cap_bytes=16 * MIB))
    services.data_bucket = data  # type: ignore[attr-defined]  # where this test's job files go
    return services
