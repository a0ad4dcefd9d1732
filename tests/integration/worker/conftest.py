"""Fixtures for tests against real podman: setup (once per session) and the API service.

`podman_socket` runs deploy/podman/setup.sh if podman or the base images are missing (needs
root; ~75 s on a fresh machine, ~3 s with the image cache), then makes sure an API service
answers on a socket private to this test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from worker.podman_runtime import PodmanRuntime
from worker.podman_service import ensure_podman_service

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "deploy" / "podman" / "setup.sh"
BUSYBOX = "localhost/busybox:latest"
PYTHON = "localhost/debian-python3:bookworm"
PYTHON_LATEST = "localhost/debian-python3:latest"  # the bare name the README gives


def _ready() -> bool:
    if shutil.which("podman") is None:
        return False
    images = all(subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode == 0
                 for image in (BUSYBOX, PYTHON, PYTHON_LATEST))
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


@pytest.fixture
async def podman(podman_socket: Path) -> AsyncIterator[PodmanRuntime]:
    rt = PodmanRuntime(podman_socket)
    try:
        yield rt
    finally:
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
