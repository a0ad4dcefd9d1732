"""An in-memory ContainerRuntime for unit tests: no processes, same contract as PodmanRuntime.

Containers "run" a tiny interpreter of the commands the contract tests use (`true`, `false`,
`echo`, `sleep`, `exit N`, and `sh -c` with `;`-separated commands, `>&2` redirection). Tests
needing other behaviour (OOM, slow output) pass a `program` that maps a spec to a FakeProcess.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.runtime import (
    ContainerExit,
    ContainerInfo,
    ContainerNotFound,
    ContainerSpec,
    ContainerSpecInvalid,
    ImageNotFound,
    ImagePullFailed,
    InvalidImageReference,
    LogSink,
    RuntimeError_,
    UsageSample,
)

KILLED_EXIT = 137


@dataclass
class FakeProcess:
    """What a fake container does: output chunks with delays before them, then an exit."""

    steps: list[tuple[float, bytes]] = field(default_factory=list)
    exit_code: int = 0
    out_of_memory: bool = False
    memory_bytes: int = 1 << 20


Program = Callable[[ContainerSpec], FakeProcess]


def interpret(spec: ContainerSpec) -> FakeProcess:
    """The default program: a few shell builtins, enough for the contract suite."""
    argv = list(spec.command)
    script = argv[2] if argv[:2] == ["sh", "-c"] and len(argv) > 2 else shlex.join(argv)
    proc = FakeProcess()
    for part in script.split(";"):
        words = shlex.split(part)
        if not words:
            continue
        to_stderr = words[-1] == ">&2"
        words = words[:-1] if to_stderr else words
        cmd, args = words[0], words[1:]
        if cmd == "true":
            proc.exit_code = 0
        elif cmd == "false":
            proc.exit_code = 1
        elif cmd == "echo":
            proc.steps.append((0.0, (" ".join(args) + "\n").encode()))
            proc.exit_code = 0
        elif cmd == "sleep":
            proc.steps.append((float(args[0]), b""))
            proc.exit_code = 0
        elif cmd == "exit":
            proc.exit_code = int(args[0]) if args else 0
            break
        else:
            proc.steps.append((0.0, f"sh: {cmd}: not found\n".encode()))
            proc.exit_code = 127
            break
    return proc


@dataclass
class _Container:
    id: str
    spec: ContainerSpec
    process: FakeProcess
    output: bytearray = field(default_factory=bytearray)
    task: asyncio.Task[None] | None = None
    exit: ContainerExit | None = None
    killed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeRuntime:
    def __init__(self, images: set[str] | None = None, program: Program = interpret,
                 unpullable: dict[str, str] | None = None, clock_ms: Callable[[], int] | None = None,
                 missing_executables: frozenset[str] = frozenset({"/bin/bash", "bash"})) -> None:
        """images: present locally; unpullable: image -> 'not_found' | 'transient' | 'invalid_reference';
        missing_executables: commands the images lack (start refuses them, as crun does)."""
        self.images = set(images or {"localhost/busybox:latest", "localhost/debian-python3:bookworm"})
        self.unpullable = dict(unpullable or {})
        self.missing_executables = missing_executables
        self.program = program
        self.containers: dict[str, _Container] = {}
        self.created_specs: list[ContainerSpec] = []
        self._ids = itertools.count(1)
        self._clock_ms = clock_ms or (lambda: int(asyncio.get_running_loop().time() * 1000))

    async def ensure_image(self, image: str) -> None:
        if image in self.images:
            return
        kind = self.unpullable.get(image, "not_found")
        if kind == "transient":
            raise ImagePullFailed(f"pulling image {image!r} failed (will be retried): registry unavailable")
        if kind == "invalid_reference":
            raise InvalidImageReference(f"invalid image reference {image!r}: invalid reference format")
        raise ImageNotFound(f"image {image!r} not found")

    async def create(self, spec: ContainerSpec) -> str:
        if spec.image not in self.images:
            raise ImageNotFound(f"image {spec.image!r} not found")
        if any(c.spec.name == spec.name for c in self.containers.values()):
            raise RuntimeError_(f"the container name {spec.name!r} is already in use")
        cid = f"fake{next(self._ids):060d}"
        self.containers[cid] = _Container(id=cid, spec=spec, process=self.program(spec))
        self.created_specs.append(spec)
        return cid

    async def start(self, container_id: str) -> None:
        c = self._get(container_id)
        executable = c.spec.command[0] if c.spec.command else None
        if executable in self.missing_executables:
            raise ContainerSpecInvalid(f"crun: executable file `{executable}` not found in $PATH: No such file "
                                       "or directory: OCI runtime attempted to invoke a command that was not found")
        if c.task is None:
            c.task = asyncio.create_task(self._run(c))

    async def _run(self, c: _Container) -> None:
        started = self._clock_ms()
        try:
            for delay, data in c.process.steps:
                if delay:
                    await asyncio.sleep(delay)
                if data:
                    c.output += data
                    c.changed.set()
            exit_code, oom = c.process.exit_code, c.process.out_of_memory
        except asyncio.CancelledError:
            exit_code, oom = KILLED_EXIT, False
        c.exit = ContainerExit(exit_code=exit_code, out_of_memory=oom, started_at_ms=started,
                               finished_at_ms=self._clock_ms())
        c.changed.set()

    async def wait(self, container_id: str) -> ContainerExit:
        c = self._get(container_id)
        while c.exit is None:
            c.changed.clear()
            await c.changed.wait()
        return c.exit

    async def follow_logs(self, container_id: str, sink: LogSink) -> None:
        c = self._get(container_id)
        sent = 0
        while True:
            if len(c.output) > sent:
                sink(bytes(c.output[sent:]))
                sent = len(c.output)
            if c.exit is not None and sent == len(c.output):
                return
            c.changed.clear()
            if len(c.output) == sent and c.exit is None:
                await c.changed.wait()

    async def kill(self, container_id: str) -> None:
        c = self.containers.get(container_id)
        if c is None or c.exit is not None or c.task is None:
            return
        c.killed = True
        c.task.cancel()
        await asyncio.gather(c.task, return_exceptions=True)
        if c.exit is None:  # killed before its task's first step, so _run never began: it still ends killed
            now = self._clock_ms()
            c.exit = ContainerExit(exit_code=KILLED_EXIT, out_of_memory=False, started_at_ms=now, finished_at_ms=now)
            c.changed.set()

    async def usage(self, container_id: str) -> UsageSample | None:
        c = self.containers.get(container_id)
        if c is None or c.task is None or c.exit is not None:
            return None
        return UsageSample(cpu_usage_ns=0, memory_bytes=c.process.memory_bytes)

    async def remove(self, container_id: str) -> None:
        await self.kill(container_id)
        self.containers.pop(container_id, None)

    async def list_by_label(self, key: str, value: str) -> list[ContainerInfo]:
        return [ContainerInfo(id=c.id, name=c.spec.name, labels=dict(c.spec.labels),
                              state="created" if c.task is None else "running" if c.exit is None else "exited")
                for c in self.containers.values() if c.spec.labels.get(key) == value]

    async def close(self) -> None:
        for cid in list(self.containers):
            await self.kill(cid)

    def _get(self, container_id: str) -> _Container:
        try:
            return self.containers[container_id]
        except KeyError:
            raise ContainerNotFound(f"container {container_id} does not exist") from None
