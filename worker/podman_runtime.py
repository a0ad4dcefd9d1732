"""ContainerRuntime over the podman REST API (the `podman` package), with the fixes these machines need.

podman-py is blocking, so every call runs in a dedicated thread pool (wait() and follow_logs()
hold a thread for a container's whole life; the default executor would cap us at cores+4).
Gotchas handled here (see ../shared/PODMAN-NOTES.md §6):
- `nano_cpus` is dropped by podman-py: the cpu limit is `cpu_period`/`cpu_quota`;
- `wait()` polls every 250 ms server-side by default: we pass `interval="10ms"`;
- `remove(force=True)` on a running container waits its stop timeout: we kill first;
- OOMKilled is only right with the conmon-oomfix wrapper installed by deploy/podman/setup.sh.
Usage is read straight from the container's cgroup v1 files (cheaper than the stats endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
from podman import PodmanClient
from podman.errors import APIError, NotFound

from worker.k8s_log import K8sFileLogDecoder
from worker.runtime import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ImageNotFound,
    ImagePullFailed,
    LogSink,
    RuntimeError_,
    RuntimeUnavailable,
    UsageSample,
)

T = TypeVar("T")

CPU_PERIOD_US = 100_000
# Images in podman's "localhost/" namespace are built on the machine; there is nowhere to pull them from.
LOCAL_IMAGE_PREFIX = "localhost/"
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
LOG_POLL_S = 0.05
CGROUP_POLL_S = 0.01
API_WAIT_SLICE_S = 5.0
log = logging.getLogger("squall.worker.podman")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_NOT_FOUND_HINTS = ("manifest unknown", "name unknown", "not found", "repository does not exist",
                    "requested access to the resource is denied", "unauthorized", "invalid reference format",
                    "short-name", "no unqualified-search registries")


def classify_pull_error(image: str, message: str) -> ImageNotFound | ImagePullFailed:
    """A pull error is the user's (no such image: final) unless it looks like the network or
    registry having a bad moment (retried by the core as a system failure)."""
    lowered = message.lower()
    transient = ("dial tcp", "i/o timeout", "connection refused", "no such host", "timeout", "temporary",
                 "connection reset", "eof", "too many requests", "429", "500", "502", "503", "504")
    if any(h in lowered for h in _NOT_FOUND_HINTS) and not any(t in lowered for t in transient):
        return ImageNotFound(f"image {image!r} not found: {message}")
    return ImagePullFailed(f"pulling image {image!r} failed (will be retried): {message}")


def _parse_time_ms(value: str | None) -> int | None:
    """podman's RFC 3339 timestamps (nanoseconds, zone offset) to epoch ms; None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, dot, rest = value[:19], value[19:20], value[20:]
    digits = ""
    if dot == ".":
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        zone = rest[len(digits):]
    else:
        zone = value[19:]
    zone = "+00:00" if zone in ("Z", "") else zone
    try:
        parsed = datetime.fromisoformat(f"{head}.{(digits + '000000')[:6]}{zone}")
    except ValueError:
        return None
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _wait_for_empty_cgroup(container_id: str) -> None:
    """Block until the container's processes are gone, watching its pids cgroup on this host.

    The API's wait polls the container state under libpod's locks every 10 ms; with many jobs
    running that polling loads the service. Reading one sysfs file is much cheaper, so the API
    wait is only called once the processes have exited (it then returns at once). Without a v1
    pids cgroup for the container (another cgroup layout), this returns at once and the API waits.
    """
    procs = CGROUP_V1_ROOT / "pids" / "libpod_parent" / f"libpod-{container_id}" / "cgroup.procs"
    while True:
        try:
            if not procs.read_bytes().strip():
                return
        except OSError:
            return
        time.sleep(CGROUP_POLL_S)


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def _is_not_running(exc: APIError) -> bool:
    text = f"{exc.explanation or ''} {exc}".lower()
    return (exc.response is not None and exc.response.status_code == 409) or "state improper" in text \
        or "can only kill running" in text


def _info_from_list_entry(attrs: dict[str, Any]) -> ContainerInfo:
    """The list endpoint's shape (State is a string there, unlike inspect's object)."""
    state = attrs.get("State")
    status = state.get("Status") if isinstance(state, dict) else state
    names = attrs.get("Names") or [attrs.get("Name") or ""]
    return ContainerInfo(id=str(attrs.get("Id")), name=str(names[0]).lstrip("/"),
                         labels=dict(attrs.get("Labels") or {}), state=str(status or "unknown"))


class PodmanRuntime:
    """The real adapter. One client (a pooled HTTP session over the unix socket) shared by all threads."""

    def __init__(self, socket_path: str | Path, *, private_network: str = "squall-private",
                 public_network: str = "podman", max_threads: int = 256) -> None:
        self.socket_path = Path(socket_path)
        self.private_network = private_network
        self.public_network = public_network
        self._client = PodmanClient(base_url=f"unix://{self.socket_path}", num_pools=4,
                                    max_pool_size=max_threads)
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="podman")
        self._network_lock = threading.Lock()
        self._networks_ready: set[str] = set()
        self._log_paths: dict[str, str] = {}
        self._exit_events: dict[str, asyncio.Event] = {}

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except APIError as exc:
            raise RuntimeError_(f"podman API error: {exc}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise RuntimeUnavailable(
                f"podman API at unix://{self.socket_path} did not answer ({exc}); start it with "
                f"`python -m worker.podman_service --socket {self.socket_path}`") from exc

    # images -----------------------------------------------------------------------------------
    async def ensure_image(self, image: str) -> None:
        await self._call(self._ensure_image_sync, image)

    def _ensure_image_sync(self, image: str) -> None:
        if self._client.images.exists(image):
            return
        if image.startswith(LOCAL_IMAGE_PREFIX):
            raise ImageNotFound(f"image {image!r} not found: it is a local image and this machine does not "
                                "have it (build it, e.g. with deploy/podman/setup.sh)")
        errors: list[str] = []
        try:
            # the pull answers 200 and reports failures inside the stream: read them from there
            stream: Any = self._client.images.pull(image, stream=True, decode=True)  # an iterator of dicts
            for progress in stream:
                if isinstance(progress, dict) and progress.get("error"):
                    errors.append(str(progress["error"]))
        except APIError as exc:
            raise classify_pull_error(image, str(exc.explanation or exc)) from exc
        except requests.exceptions.RequestException as exc:
            raise classify_pull_error(image, str(exc)) from exc
        if errors or not self._client.images.exists(image):
            raise classify_pull_error(image, "; ".join(errors) or "the pull ended but the image is absent")

    # containers -------------------------------------------------------------------------------
    async def create(self, spec: ContainerSpec) -> str:
        return await self._call(self._create_sync, spec)

    def _create_sync(self, spec: ContainerSpec) -> str:
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "environment": dict(spec.env),
            "labels": dict(spec.labels),
            "mounts": [{"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
                       for m in spec.mounts],
            "stop_timeout": 1,
        }
        if spec.cpu_mcpu:
            kwargs["cpu_period"] = CPU_PERIOD_US
            kwargs["cpu_quota"] = max(1000, spec.cpu_mcpu * CPU_PERIOD_US // 1000)
        if spec.memory_bytes:
            kwargs["mem_limit"] = spec.memory_bytes
            kwargs["memswap_limit"] = spec.memory_bytes  # no swap: the limit is hard
        if spec.pids_limit:
            kwargs["pids_limit"] = spec.pids_limit
        if spec.workdir:
            kwargs["working_dir"] = spec.workdir
        if spec.network == "none":
            kwargs["network_mode"] = "none"
        elif spec.network == "private":
            self._ensure_network_sync(self.private_network, internal=True)
            kwargs["networks"] = {self.private_network: {}}
        elif spec.network == "public":
            kwargs["networks"] = {self.public_network: {}}
        else:
            raise ValueError(f"network must be none, private or public, not {spec.network!r}")
        try:
            container = self._client.containers.create(spec.image, command=list(spec.command), **kwargs)
        except NotFound as exc:
            raise ImageNotFound(f"image {spec.image!r} not found: {exc.explanation or exc}") from exc
        log_path = container.attrs.get("HostConfig", {}).get("LogConfig", {}).get("Path")
        if log_path:
            self._log_paths[str(container.id)] = log_path
        return str(container.id)

    def _ensure_network_sync(self, name: str, internal: bool) -> None:
        with self._network_lock:
            if name in self._networks_ready:
                return
            if not self._client.networks.exists(name):
                try:
                    self._client.networks.create(name, internal=internal)
                except APIError:
                    if not self._client.networks.exists(name):  # lost a race with another agent: fine
                        raise
            self._networks_ready.add(name)

    async def start(self, container_id: str) -> None:
        await self._call(self._with_container, container_id, lambda c: c.start())

    async def wait(self, container_id: str) -> ContainerExit:
        try:
            return await self._call(self._wait_sync, container_id)
        finally:
            self._exited(container_id).set()  # lets follow_logs drain the file and return

    def _exited(self, container_id: str) -> asyncio.Event:
        return self._exit_events.setdefault(container_id, asyncio.Event())

    def _wait_sync(self, container_id: str) -> ContainerExit:
        def wait_and_inspect(c: Any) -> ContainerExit:
            while True:
                _wait_for_empty_cgroup(container_id)
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
                                 out_of_memory=bool(state.get("OOMKilled")),
                                 started_at_ms=_parse_time_ms(state.get("StartedAt")),
                                 finished_at_ms=_parse_time_ms(state.get("FinishedAt")))
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
            if not _is_not_running(exc):
                raise

    async def usage(self, container_id: str) -> UsageSample | None:
        # two small sysfs reads: cheap enough for the event loop, no thread hop
        cg = f"libpod_parent/libpod-{container_id}"
        try:
            cpu = int((CGROUP_V1_ROOT / "cpuacct" / cg / "cpuacct.usage").read_text())
            mem = int((CGROUP_V1_ROOT / "memory" / cg / "memory.usage_in_bytes").read_text())
        except (OSError, ValueError):
            return None
        return UsageSample(cpu_usage_ns=cpu, memory_bytes=mem)

    async def remove(self, container_id: str) -> None:
        await self._call(self._remove_sync, container_id)

    def _remove_sync(self, container_id: str) -> None:
        self._log_paths.pop(container_id, None)
        self._exit_events.pop(container_id, None)
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

    async def list_by_label(self, key: str, value: str) -> list[ContainerInfo]:
        def list_sync() -> list[ContainerInfo]:
            found = self._client.containers.list(all=True, filters={"label": f"{key}={value}"})
            return [_info_from_list_entry(c.attrs) for c in found]
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
