"""Warm JVMs in containers for `process_type = "jvm"` jobs (Hail's JVM pool, batch/batch/worker/worker.py).

Each JVM is a long-lived container running worker/jvm/JVMEntryway.java on a unix socket. The
host's JDK is bind-mounted read-only (no JRE in the job images), with the few host files it needs
(its /etc config and libstdc++, absent from the minimal Debian image). JVMs are pooled by shape
(mCPU, memory): the container's cpu quota and memory limit are the job's, -Xmx is 90 % of it.
A JVM that was killed (cancel, timeout) or died (System.exit, OOM) is discarded, never reused.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from worker.runtime import LABEL_INSTANCE, ContainerRuntime, ContainerSpec, Mount

ENTRYWAY_SOURCE = Path(__file__).parent / "jvm" / "JVMEntryway.java"
LABEL_ROLE = "squall.role"
ENTRYWAY_DIR_IN_CONTAINER = "/jvm-entryway"
WORK_DIR_IN_CONTAINER = "/jvm-work"
SOCKET_DIR_IN_CONTAINER = "/jvm-sock"
CONNECT_TIMEOUT_S = 60.0

# Reply codes of the entryway
USER_EXCEPTION, ENTRYWAY_EXCEPTION, SUCCESS = 0, 1, 2


class JvmError(Exception):
    """The JVM pool could not start or reach a JVM (a system failure)."""


class JvmDied(Exception):
    """The JVM ended while running a job (System.exit, OOM, kill): read its container's exit."""


def default_java_home() -> Path:
    java = shutil.which("java")
    if java is None:
        raise JvmError("no java on PATH: install a JDK 17 or pass --java-home")
    return Path(os.path.realpath(java)).parent.parent


def compile_entryway(cache_dir: Path, java_home: Path) -> Path:
    """Compile JVMEntryway.java once per source version; returns the directory with the class."""
    source = ENTRYWAY_SOURCE.read_bytes()
    out = cache_dir / hashlib.sha256(source).hexdigest()[:16]
    if (out / "JVMEntryway.class").exists():
        return out
    tmp = cache_dir / f".build-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    javac = java_home / "bin" / "javac"
    proc = subprocess.run([str(javac if javac.exists() else "javac"), "--release", "17", "-d", str(tmp),
                           str(ENTRYWAY_SOURCE)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise JvmError(f"compiling {ENTRYWAY_SOURCE} failed: {proc.stderr.strip()}")
    try:
        os.replace(tmp, out)
    except OSError:  # another agent compiled it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def host_mounts_for_java(java_home: Path) -> tuple[Mount, ...]:
    """The JDK plus the host files it loads that a minimal image lacks."""
    mounts = [Mount(str(java_home), str(java_home), read_only=True)]
    conf = java_home / "conf"
    if conf.is_dir():  # Debian's JDK links conf/ into /etc/java-17-openjdk
        for entry in conf.iterdir():
            if entry.is_symlink():
                target = Path(os.path.realpath(entry)).parent
                mounts.append(Mount(str(target), str(target), read_only=True))
                break
    for lib in ("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6"):
        if os.path.exists(lib):
            mounts.append(Mount(os.path.realpath(lib), lib, read_only=True))
    return tuple(mounts)


def encode_request(jar: str, main_class: str, log_path: str, args: list[str]) -> bytes:
    parts = [jar, main_class, log_path, *args]
    out = struct.pack(">i", len(parts))
    for p in parts:
        b = p.encode()
        out += struct.pack(">i", len(b)) + b
    return out


@dataclass
class WarmJvm:
    name: str
    container_id: str
    socket_path: Path
    shape: tuple[int, int]


@dataclass
class JvmPool:
    runtime: ContainerRuntime
    instance_name: str
    work_dir: Path  # host dir mounted at /jvm-work (jars, logs)
    socket_dir: Path  # host dir mounted at /jvm-sock; short: unix socket paths are limited to 107 bytes
    image: str
    java_home: Path
    entryway_dir: Path
    _idle: dict[tuple[int, int], list[WarmJvm]] = field(default_factory=dict)
    _counter: int = 0

    async def remove_stale(self) -> None:
        """JVMs of a previous run of this agent: their jobs are reported worker_crashed, so stop them."""
        for c in await self.runtime.list_by_label(LABEL_ROLE, f"jvm-{self.instance_name}"):
            await self.runtime.remove(c.id)

    async def acquire(self, cores_mcpu: int, memory_bytes: int) -> WarmJvm:
        shape = (cores_mcpu, memory_bytes)
        idle = self._idle.get(shape)
        if idle:
            return idle.pop()
        return await self._start(shape)

    def release(self, jvm: WarmJvm) -> None:
        self._idle.setdefault(jvm.shape, []).append(jvm)

    async def discard(self, jvm: WarmJvm) -> None:
        await self.runtime.remove(jvm.container_id)
        jvm.socket_path.unlink(missing_ok=True)

    async def _start(self, shape: tuple[int, int]) -> WarmJvm:
        self._counter += 1
        name = f"squall-{self.instance_name}-jvm-{os.getpid()}-{self._counter}"
        (self.work_dir / "jars").mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        sock_name = f"j{self._counter}.sock"
        host_socket = self.socket_dir / sock_name
        host_socket.unlink(missing_ok=True)
        cores_mcpu, memory_bytes = shape
        xmx_mib = max(64, int(memory_bytes * 0.9) >> 20)
        spec = ContainerSpec(
            name=name, image=self.image,
            command=(str(self.java_home / "bin" / "java"), f"-Xmx{xmx_mib}m", "-XX:+UseSerialGC",
                     "-cp", ENTRYWAY_DIR_IN_CONTAINER, "JVMEntryway", f"{SOCKET_DIR_IN_CONTAINER}/{sock_name}"),
            mounts=(*host_mounts_for_java(self.java_home),
                    Mount(str(self.entryway_dir), ENTRYWAY_DIR_IN_CONTAINER, read_only=True),
                    Mount(str(self.work_dir), WORK_DIR_IN_CONTAINER),
                    Mount(str(self.socket_dir), SOCKET_DIR_IN_CONTAINER)),
            labels={LABEL_INSTANCE: self.instance_name, LABEL_ROLE: f"jvm-{self.instance_name}"},
            cpu_mcpu=cores_mcpu, memory_bytes=memory_bytes, network="none")
        await self.runtime.ensure_image(self.image)
        cid = await self.runtime.create(spec)
        await self.runtime.start(cid)
        jvm = WarmJvm(name=name, container_id=cid, socket_path=host_socket, shape=shape)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_TIMEOUT_S
        while True:  # ready when it accepts a connection (the socket file exists before listen())
            try:
                _, probe = await asyncio.open_unix_connection(str(host_socket))
                probe.close()  # an empty connection: the entryway ignores it
                return jvm
            except OSError:
                pass
            if loop.time() > deadline:
                await self.discard(jvm)
                raise JvmError(f"JVM {name} did not listen on {host_socket} within {CONNECT_TIMEOUT_S:g} s")
            await asyncio.sleep(0.02)

    async def send(self, jvm: WarmJvm, jar_in_container: str, log_in_container: str, args: list[str]) -> tuple[int, str]:
        """Run one job on the JVM; returns (code, message); raises JvmDied if the JVM ended."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(jvm.socket_path))
        except OSError as exc:  # it was listening a moment ago: a system failure, not the job's
            raise JvmError(f"cannot reach JVM {jvm.name}: {exc}") from exc
        try:
            writer.write(encode_request(jar_in_container, "", log_in_container, args))
            await writer.drain()
            code = struct.unpack(">i", await reader.readexactly(4))[0]
            length = struct.unpack(">i", await reader.readexactly(4))[0]
            message = (await reader.readexactly(length)).decode(errors="replace")
            return code, message
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise JvmDied(f"JVM {jvm.name} ended during the job") from exc
        finally:
            writer.close()

    async def close(self) -> None:
        for jvms in self._idle.values():
            for jvm in jvms:
                await self.discard(jvm)
        self._idle.clear()
