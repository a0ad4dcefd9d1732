"""The container runtime the worker drives: a small Protocol, a real adapter (podman) and a fake.

Everything the attempt needs from a container engine is here, in squall's words, so the attempt
logic never imports podman. Both adapters pass the one contract suite,
tests/contract/test_container_runtime.py (podman under the `podman` marker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Labels put on every container the worker creates; reconciliation after a restart finds
# an attempt's containers by them.
LABEL_INSTANCE = "squall.instance"
LABEL_ATTEMPT = "squall.attempt"
LABEL_STEP = "squall.step"


class RuntimeError_(Exception):
    """Base of the runtime's errors (named with a trailing underscore to keep the builtin visible)."""


class ImageNotFound(RuntimeError_):
    """The image does not exist locally and no registry has it: the job cannot run as written."""


class InvalidImageReference(RuntimeError_):
    """The image reference is malformed (the runtime's parser refused it): final, the user's mistake."""


class ContainerSpecInvalid(RuntimeError_):
    """The runtime refused the container as specified: its executable is not in the image, its
    working directory or user does not exist, ... Final: running it again fails the same way."""


class ImagePullFailed(RuntimeError_):
    """Pulling failed for a reason that may go away (network, registry outage): a system failure."""


class ContainerNotFound(RuntimeError_):
    """The container named does not exist (any more)."""


class RuntimeUnavailable(RuntimeError_):
    """The container engine did not answer; the message says how to start it."""


@dataclass(frozen=True, slots=True)
class Mount:
    """A bind mount from the host (source) into the container (target)."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What to run and within which limits. Units: mCPU, bytes; network is none|private|public."""

    name: str
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu_mcpu: int | None = None
    memory_bytes: int | None = None
    pids_limit: int | None = None
    network: str = "none"  # none | private (no egress) | public (egress); the adapter maps them
    workdir: str | None = None
    # a host directory on the attempt's quota'd scratch volume for the root filesystem's writable
    # layer; None: the adapter bounds it otherwise (a size-limited tmpfs)
    writable_dir: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerExit:
    """How a container ended. exit_code is None when the engine could not tell."""

    exit_code: int | None
    out_of_memory: bool
    started_at_ms: int | None = None
    finished_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class UsageSample:
    """One resource-usage reading of a running container (cumulative cpu, current memory, and the
    peak memory since it started where the engine keeps one: it catches spikes between samples)."""

    cpu_usage_ns: int
    memory_bytes: int
    memory_peak_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """A container found by label (reconciliation)."""

    id: str
    name: str
    labels: Mapping[str, str]
    state: str  # created | running | exited | ... (the engine's word)

    @property
    def running(self) -> bool:
        return self.state == "running"


LogSink = Callable[[bytes], None]


class ContainerRuntime(Protocol):
    async def ensure_image(self, image: str) -> None:
        """Make the image available locally (pull if needed).
        Raises ImageNotFound (final) or ImagePullFailed (transient)."""
        ...

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; returns its id. Raises ImageNotFound if the image is absent."""
        ...

    async def start(self, container_id: str) -> None: ...

    async def wait(self, container_id: str) -> ContainerExit:
        """Block until the container exits; safe to call again after it has exited."""
        ...

    async def follow_logs(self, container_id: str, sink: LogSink) -> None:
        """Feed stdout+stderr to sink as it is produced, from the start; returns when the container exits."""
        ...

    async def kill(self, container_id: str) -> None:
        """SIGKILL the container's processes; no error if it already exited."""
        ...

    async def usage(self, container_id: str) -> UsageSample | None:
        """Current usage, or None when the container is not running."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove the container (killing it first if needed); no error if it is already gone."""
        ...

    async def list_by_label(self, key: str, value: str) -> list[ContainerInfo]: ...

    async def close(self) -> None: ...
