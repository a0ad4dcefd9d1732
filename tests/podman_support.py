"""Real podman for tests: setup (once per session), the API service, the job networks, a runtime.

`podman_socket` runs deploy/podman/setup.sh if podman or the base images are missing (needs
root; ~75 s on a fresh machine, ~3 s with the image cache), then makes sure an API service
answers on a socket private to this test session. tests/conftest.py offers these fixtures to every
directory (the ContainerRuntime contract in tests/contract and the worker's integration tests);
each test that uses one is marked `podman`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from worker.job_networks import JobNetworks
from worker.podman_runtime import PodmanRuntime
from worker.podman_service import ensure_podman_service
from worker.userns import UsernsConfigError, read_subid_range

REPO = Path(__file__).resolve().parents[1]
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
