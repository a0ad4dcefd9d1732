"""Fixtures for tests against real podman: setup (once per session) and the API service.

`podman_socket` runs deploy/podman/setup.sh if podman or the base images are missing (needs
root; ~75 s on a fresh machine, ~3 s with the image cache), then makes sure an API service
answers on a socket private to this test session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.unit.worker.factories import MIB
from worker.attempt import AttemptServices, WorkerLimits
from worker.clock import SystemClock
from worker.job_networks import JobNetworks
from worker.podman_runtime import PodmanRuntime
from worker.podman_service import ensure_podman_service
from worker.records import AttemptRecords
from worker.scratch import ScratchManager
from worker.storage import JobFiles, SharedStore
from worker.userns import UsernsConfigError, read_subid_range

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "deploy" / "podman" / "setup.sh"
BUSYBOX = "localhost/busybox:latest"
PYTHON = "localhost/debian-python3:bookworm"
PYTHON_LATEST = "localhost/debian-python3:latest"  # the bare name the README gives


def _ready() -> bool:
    if shutil.which("podman") is None or shutil.which("nft") is None:
        return False
    images = all(subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode == 0
                 for image in (BUSYBOX, PYTHON, PYTHON_LATEST))
    try:
        read_subid_range()
    except UsernsConfigError:
        return False
    return images and Path("/usr/local/bin/conmon-oomfix").exists()


@pytest.fixture(scope="session")
def podman_socket() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("podman tests run rootful: run them as root")
    if not _ready():
        subprocess.run(["bash", str(SETUP)], check=True)
    sock = Path(os.environ.get("SQUALL_TEST_PODMAN_SOCK", "/run/squall/podman.sock"))
    pid = ensure_podman_service(sock)
    yield sock
    if pid is not None:  # only stop a service this session started
        os.kill(pid, 15)


@pytest.fixture(scope="session")
def job_networks(podman_socket: Path) -> Iterator[JobNetworks]:
    """The job firewall and networks, held for the whole session (each test's runtime registers
    too, so they are not rebuilt per test); removed at the end unless another holder remains."""
    networks = JobNetworks()
    holder = PodmanRuntime(podman_socket, networks=networks)
    asyncio.run(holder.prepare_job_networks())
    yield networks
    asyncio.run(holder.release_job_networks())
    asyncio.run(holder.close())


@pytest.fixture
async def podman(podman_socket: Path, job_networks: JobNetworks) -> AsyncIterator[PodmanRuntime]:
    rt = PodmanRuntime(podman_socket, networks=job_networks)
    await rt.prepare_job_networks()
    try:
        yield rt
    finally:
        await rt.release_job_networks()
        await rt.close()


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
