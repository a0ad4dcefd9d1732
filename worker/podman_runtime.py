"""ContainerRuntime over the podman REST API (the `podman` package), with the fixes these machines
need and the job sandbox (worker/sandbox.py) applied to every container.

Creating a container: inspect the image (its layers and run config; worker/podman_images.py),
lease a user-namespace slot (worker/userns.py), mount the job's root filesystem on it
(worker/rootfs.py), then create the container from that rootfs with libpod's own JSON (podman-py's
keyword API has no way to say idmapped mounts or id mappings); removing it undoes the mounts and
ends the lease.

podman-py is blocking, so every call runs in a dedicated thread pool (wait() and follow_logs()
hold a thread for a container's whole life; the default executor would cap us at cores+4).
Gotchas handled here:
- `wait()` polls every 250 ms server-side by default: we pass `interval="10ms"`, and first watch
  the container's cgroup empty out (worker/cgroups.py), which is cheaper for the service;
- `remove(force=True)` on a running container waits its stop timeout: we kill first;
- OOMKilled is only right with the conmon-oomfix wrapper installed by deploy/podman/setup.sh; the
  cgroup's own OOM-kill counter (v1 memory.oom_control, v2 memory.events) is read as well.
Errors the job's own spec causes (no such executable, working directory or user; a malformed image
reference) are raised as ContainerSpecInvalid / InvalidImageReference (worker/podman_errors.py).
Jobs on a network get squall's own job networks (worker/job_networks.py), and only once the job
firewall is installed (`prepare_job_networks`): without it, a networked job is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests
from podman import PodmanClient
from podman.errors import APIError, NotFound

from worker.cgroups import ContainerCgroup
from worker.job_firewall import JobFirewall
from worker.job_networks import JobNetworks, ensure_network, remove_network
from worker.k8s_log import K8sFileLogDecoder
from worker.podman_api import api_message, info_from_list_entry, is_not_running, parse_time_ms, unreachable
from worker.podman_errors import classify_pull_error, user_error_for
from worker.podman_images import inspect_image, pull_image
from worker.rootfs import DEFAULT_MOUNT_ROOT, RootfsBuilder
from worker.runtime import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerRuntimeError,
    ContainerSpec,
    ImageNotFound,
    LogSink,
    RuntimeUnavailable,
    UsageSample,
)
from worker.sandbox import ImageConfig, create_body
from worker.userns import DEFAULT_STATE_DIR, SlotAllocator, read_subid_range

T = TypeVar("T")

# Images in podman's "localhost/" namespace are built on the machine; there is nowhere to pull them from.
LOCAL_IMAGE_PREFIX = "localhost/"
LOG_POLL_S = 0.05
CGROUP_POLL_S = 0.01
API_WAIT_SLICE_S = 5.0
ORPHAN_AGE_S = 60.0
ROOTFS_TMPFS_BYTES = 1 << 30  # writable layer of containers without a scratch volume (the warm JVMs)
log = logging.getLogger("squall.worker.podman")


def _wait_for_empty_cgroup(cgroup: ContainerCgroup) -> None:
    """Block until the container's processes are gone, watching its cgroup on this host.

    The API's wait polls the container state under libpod's locks every 10 ms; with many jobs
    running that polling loads the service. Reading one sysfs file is much cheaper, so the API
    wait is only called once the processes have exited (it then returns at once). When the
    cgroup cannot be found (another layout, already removed), this returns at once and the API waits.
    """
    while cgroup.is_empty() is False:
        time.sleep(CGROUP_POLL_S)


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


class PodmanRuntime:
    """The real adapter. One client (a pooled HTTP session over the unix socket) shared by all threads."""

    def __init__(self, socket_path: str | Path, *, networks: JobNetworks | None = None,
                 sandbox_dir: Path = DEFAULT_STATE_DIR.parent, rootfs_tmpfs_bytes: int = ROOTFS_TMPFS_BYTES,
                 max_threads: int = 256) -> None:
        self.socket_path = Path(socket_path)
        self.networks = networks or JobNetworks()
        self.rootfs_tmpfs_bytes = rootfs_tmpfs_bytes
        uid_range, gid_range = read_subid_range()  # fails early, saying how to fix the host
        self._slots = SlotAllocator(uid_range, gid_range, sandbox_dir / DEFAULT_STATE_DIR.name)
        self._rootfs = RootfsBuilder(sandbox_dir / DEFAULT_MOUNT_ROOT.name)
        self._client = PodmanClient(base_url=f"unix://{self.socket_path}", num_pools=4,
                                    max_pool_size=max_threads)
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="podman")
        self._firewall: JobFirewall | None = None
        self._images: dict[str, ImageConfig] = {}
        self._names: dict[str, str] = {}  # container id -> name (the owner of its slot lease)
        self._cgroups: dict[str, ContainerCgroup] = {}
        self._oom_kills: dict[str, int] = {}
        self._log_paths: dict[str, str] = {}
        self._exit_events: dict[str, asyncio.Event] = {}

    async def _call(self, fn: Callable[..., T], *args: Any, user_errors: bool = False) -> T:
        """Run a blocking call in the pool. With user_errors, an API error the job's own spec
        caused is raised as the user error it is (ContainerSpecInvalid, InvalidImageReference)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except APIError as exc:
            if unreachable(exc):  # podman-py wraps a refused connection in an APIError
                raise self._unavailable(exc.__cause__ or exc) from exc
            message = str(exc.explanation or exc)
            user_error = user_error_for(message) if user_errors else None
            if user_error is not None:
                raise user_error from exc
            raise ContainerRuntimeError(f"podman API error: {message}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, cause: BaseException) -> RuntimeUnavailable:
        return RuntimeUnavailable(
            f"podman API at unix://{self.socket_path} did not answer ({cause}); start it with "
            f"`python -m worker.podman_service --socket {self.socket_path}`")

    # job networks ------------------------------------------------------------------------------
    async def prepare_job_networks(self, firewall: JobFirewall | None = None) -> None:
        """Install the job firewall, then create (or check) the job networks. Until this has run,
        jobs asking for a network are refused."""
        firewall = firewall or JobFirewall(self.networks.firewall_policy())
        await asyncio.to_thread(firewall.install)
        for network in self.networks.all():
            await self._call(ensure_network, self._client, network)
        self._firewall = firewall

    async def release_job_networks(self) -> None:
        """Unregister from the firewall; the last agent on the host removes the rules and networks."""
        firewall, self._firewall = self._firewall, None
        if firewall is not None and await asyncio.to_thread(firewall.release):
            for network in self.networks.all():
                await self._call(remove_network, self._client, network)

    def _network_for(self, kind: str) -> str | None:
        if kind == "none":
            return None
        network = self.networks.by_kind(kind)
        if self._firewall is None:
            raise ContainerRuntimeError(f"job networks are not firewalled on this worker: refusing a {kind} network "
                                "(the agent calls prepare_job_networks at start)")
        return network.name

    # images -----------------------------------------------------------------------------------
    async def ensure_image(self, image: str) -> None:
        await self._call(self._ensure_image_sync, image)

    def _inspect_image(self, image: str) -> ImageConfig | None:
        """The image's layers and config, cached for the create that follows; None if absent."""
        config = inspect_image(self._client, image)
        if config is not None:
            self._images[image] = config
        return config

    def _ensure_image_sync(self, image: str) -> None:
        if self._inspect_image(image) is not None:
            return
        if image.startswith(LOCAL_IMAGE_PREFIX):
            raise ImageNotFound(f"image {image!r} not found: it is a local image and this machine does not "
                                "have it (build it, e.g. with deploy/podman/setup.sh)")
        pull_image(self._client, image)
        if self._inspect_image(image) is None:
            raise classify_pull_error(image, "the pull ended but the image is absent")

    # containers -------------------------------------------------------------------------------
    async def create(self, spec: ContainerSpec) -> str:
        return await self._call(self._create_sync, spec, user_errors=True)

    def _create_sync(self, spec: ContainerSpec) -> str:
        network = self._network_for(spec.network)
        image = self._images.get(spec.image) or self._inspect_image(spec.image)
        if image is None:
            raise ImageNotFound(f"image {spec.image!r} not found")
        if self._slots.lease_of(spec.name) is not None and self._client.containers.exists(spec.name):
            raise ContainerRuntimeError(f"the container name {spec.name!r} is already in use")
        slot = self._slots.acquire(spec.name)
        try:
            mapping = self._slots.mapping(slot)
            rootfs = self._rootfs.build(slot, list(image.layers), mapping,
                                        Path(spec.writable_dir) if spec.writable_dir else None,
                                        self.rootfs_tmpfs_bytes)
            body = create_body(spec, image, mapping, str(rootfs), network)
            response = self._client.api.post("/containers/create", data=json.dumps(body),
                                             headers={"content-type": "application/json"})
            if response.status_code >= 300:
                message = api_message(response)
                raise user_error_for(message) or ContainerRuntimeError(f"creating container {spec.name} failed: {message}")
            container_id = str(response.json()["Id"])
        except BaseException:
            self._rootfs.teardown(slot)
            self._slots.release(spec.name)
            raise
        self._names[container_id] = spec.name
        with contextlib.suppress(APIError, KeyError, TypeError):
            attrs = self._client.containers.get(container_id).attrs
            self._log_paths[container_id] = attrs["HostConfig"]["LogConfig"]["Path"]
        return container_id

    async def start(self, container_id: str) -> None:
        await self._call(self._with_container, container_id, lambda c: c.start(), user_errors=True)

    async def wait(self, container_id: str) -> ContainerExit:
        try:
            return await self._call(self._wait_sync, container_id)
        finally:
            self._exited(container_id).set()  # lets follow_logs drain the file and return

    def _exited(self, container_id: str) -> asyncio.Event:
        return self._exit_events.setdefault(container_id, asyncio.Event())

    def _wait_sync(self, container_id: str) -> ContainerExit:
        cgroup = self._cgroup(container_id)

        def wait_and_inspect(c: Any) -> ContainerExit:
            while True:
                _wait_for_empty_cgroup(cgroup)
                oom_kills = cgroup.oom_kills()  # read while the cgroup is still there
                if oom_kills:
                    self._oom_kills[container_id] = oom_kills
                try:
                    c.wait(condition=["exited", "stopped"], interval="10ms", timeout=API_WAIT_SLICE_S)
                    c.reload()
                    break
                except (APIError, requests.exceptions.RequestException):
                    # a wait call that outlives its slice: look at the state ourselves, so a wait the
                    # service never answers (seen under heavy load) cannot hang the attempt
                    c.reload()
                    if c.attrs.get("State", {}).get("Status") in ("exited", "stopped"):
                        break
                    log.debug("container %s still running after a %g s wait slice", container_id[:12],
                                API_WAIT_SLICE_S)
            state = c.attrs.get("State", {})
            code = state.get("ExitCode")
            return ContainerExit(exit_code=None if code is None or code < 0 else int(code),
                                 out_of_memory=bool(state.get("OOMKilled")) or container_id in self._oom_kills,
                                 started_at_ms=parse_time_ms(state.get("StartedAt")),
                                 finished_at_ms=parse_time_ms(state.get("FinishedAt")))
        return self._with_container(container_id, wait_and_inspect)

    async def follow_logs(self, container_id: str, sink: LogSink) -> None:
        """Tail the container's k8s-file log on this host (the API's follow lags ~100 ms behind
        the exit). Ends once wait() has seen the exit, or, if nobody waits, when inspect says so."""
        cached = self._log_paths.get(container_id)
        path = cached if cached is not None else await self._call(self._inspect_log_path, container_id)
        exited = self._exited(container_id)
        decoder = K8sFileLogDecoder()
        offset = 0
        idle_polls = 0
        while True:
            finished = exited.is_set()
            chunk = _read_from(path, offset)
            if chunk:
                offset += len(chunk)
                out = decoder.feed(chunk)
                if out:
                    sink(out)
            if finished:
                rest = decoder.flush()
                if rest:
                    sink(rest)
                return
            idle_polls = 0 if chunk else idle_polls + 1
            if idle_polls and idle_polls % 40 == 0 and not await self._is_running(container_id):
                exited.set()  # nobody is waiting on it (e.g. reattached): find out ourselves
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited.wait(), LOG_POLL_S)

    def _inspect_log_path(self, container_id: str) -> str:
        def log_path(c: Any) -> str:
            c.reload()
            return str(c.attrs["HostConfig"]["LogConfig"]["Path"])
        return self._with_container(container_id, log_path)

    async def _is_running(self, container_id: str) -> bool:
        def running(c: Any) -> bool:
            c.reload()
            return bool(c.attrs.get("State", {}).get("Running"))
        try:
            return await self._call(self._with_container, container_id, running)
        except ContainerNotFound:
            return False

    async def kill(self, container_id: str) -> None:
        await self._call(self._kill_sync, container_id)

    def _kill_sync(self, container_id: str) -> None:
        try:
            self._model(container_id).kill()
        except NotFound:
            pass
        except APIError as exc:  # not running any more, which is what we wanted
            if not is_not_running(exc):
                raise

    def _cgroup(self, container_id: str) -> ContainerCgroup:
        cgroup = self._cgroups.get(container_id)
        if cgroup is None:
            cgroup = self._cgroups[container_id] = ContainerCgroup(container_id)
        return cgroup

    async def usage(self, container_id: str) -> UsageSample | None:
        # a few small sysfs reads: cheap enough for the event loop, no thread hop
        stats = self._cgroup(container_id).usage()
        if stats is None or stats.cpu_usage_ns is None or stats.memory_bytes is None:
            return None
        return UsageSample(cpu_usage_ns=stats.cpu_usage_ns, memory_bytes=stats.memory_bytes,
                           memory_peak_bytes=stats.memory_peak_bytes)

    async def remove(self, container_id: str) -> None:
        await self._call(self._remove_sync, container_id)

    def _remove_sync(self, container_id: str) -> None:
        self._log_paths.pop(container_id, None)
        self._exit_events.pop(container_id, None)
        self._cgroups.pop(container_id, None)
        self._oom_kills.pop(container_id, None)
        name = self._names.pop(container_id, None) or self._name_of(container_id)
        container = self._model(container_id)
        try:
            container.remove(v=True)  # the common case: it exited; no kill round trip
        except NotFound:
            pass
        except APIError:
            # still running: kill first, as force-removing a running container waits its stop timeout
            self._kill_sync(container_id)
            try:
                container.remove(force=True, v=True)
            except NotFound:
                pass
        if name is not None:
            self._release_sandbox(name)

    def _name_of(self, container_id: str) -> str | None:
        with contextlib.suppress(NotFound, APIError):
            return str(self._client.containers.get(container_id).name)
        return None

    def _release_sandbox(self, name: str) -> None:
        """Unmount the container's root filesystem and end its slot lease (after it is removed)."""
        slot = self._slots.lease_of(name)
        if slot is None:
            return
        self._rootfs.teardown(slot)
        self._slots.release(name)

    async def release_orphans(self, name_prefix: str) -> list[str]:
        """Sandboxes whose container is gone (an agent died between lease and create, or before
        cleanup): unmount and release those whose name starts with name_prefix (this agent's)."""
        def sweep() -> list[str]:
            released = []
            for name, slot in self._slots.leases().items():
                age = self._slots.lease_age_s(slot)
                # a young lease may be a create in flight (of an agent whose name extends the prefix)
                if name.startswith(name_prefix) and (age is None or age > ORPHAN_AGE_S) \
                        and not self._client.containers.exists(name):
                    self._release_sandbox(name)
                    released.append(name)
            return released
        return await self._call(sweep)

    async def list_by_label(self, key: str, value: str) -> list[ContainerInfo]:
        def list_sync() -> list[ContainerInfo]:
            found = self._client.containers.list(all=True, filters={"label": f"{key}={value}"})
            return [info_from_list_entry(c.attrs) for c in found]
        return await self._call(list_sync)

    def _model(self, container_id: str) -> Any:
        """A container handle from the id alone: saves the inspect round trip of containers.get()."""
        return self._client.containers.prepare_model({"Id": container_id})

    def _with_container(self, container_id: str, fn: Callable[[Any], T]) -> T:
        container = self._model(container_id)
        try:
            return fn(container)
        except NotFound as exc:
            raise ContainerNotFound(f"container {container_id} does not exist") from exc

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
