"""The local provider: each instance is a worker agent process on this machine (the embedded default).

    python -m worker --instance-name N --cores C --memory-gib M --storage-gib S --pool P --region local
        --bootstrap ... --topic-prefix ... --home ... [--database-url ...] [--preemptible]

Processes run in their own session (they outlive an autoscaler restart) and are tracked by pid
files under <home>/instances/<name>.pid, so `list` finds them again after a restart. The command
is configurable: `python -m services.simworker` takes the same flags and runs nothing.

Zones (optional, `--zones local-a,local-b:2`): names the autoscaler chooses between, each with an
optional capacity (how many instances it holds at once). A create in a full zone is refused as a
cloud zone without capacity refuses it (ZoneExhausted), so one machine shows how the autoscaler
weighs zones by their recent success. An instance's zone is kept in <home>/instances/<name>.zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.config import ServiceConfig
from services.providers.base import InstanceSpec, ProviderError, ProviderInstance, ZoneExhausted

log = logging.getLogger(__name__)

GIB = 1024**3
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "worker")
SIMULATED_WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "services.simworker")


class LocalProvider:
    name = "local"

    def __init__(self, config: ServiceConfig, command: Sequence[str] = WORKER_COMMAND,
                 extra_args: Sequence[str] = (), stop_timeout_s: float = 30.0,
                 zones: Mapping[str, int | None] | None = None) -> None:
        self._config = config
        self._zones = dict(zones or {})  # zone -> capacity (None: unlimited)
        self._starting: dict[str, int] = {}  # zone -> creates in flight (their zone files are not written yet)
        self._command = tuple(command)
        self._extra_args = tuple(extra_args)
        self._stop_timeout_s = stop_timeout_s
        self.dir = config.home / "instances"
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # reaped by us, so no zombies

    def _pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def command_for(self, spec: InstanceSpec) -> list[str]:
        c = self._config
        args = [*self._command, "--instance-name", spec.name, "--cores", str(max(1, spec.cores_mcpu // 1000)),
                "--memory-gib", f"{spec.memory_bytes / GIB:g}", "--storage-gib", str(spec.storage_gib),
                "--pool", spec.pool, "--region", spec.region,
                "--bootstrap", c.bootstrap_servers, "--topic-prefix", c.topic_prefix, "--home", str(c.home)]
        if c.database_url:
            args += ["--database-url", c.database_url]
        if spec.preemptible:
            args.append("--preemptible")
        return args + list(self._extra_args)

    def zones_for(self, region: str) -> list[str]:
        """Every configured zone: they are this machine's, whatever the region is called."""
        return list(self._zones)

    def _zone_file(self, name: str) -> Path:
        return self.dir / f"{name}.zone"

    def _zone_of(self, name: str) -> str | None:
        try:
            return self._zone_file(name).read_text().strip() or None
        except OSError:
            return None

    def _check_room(self, zone: str) -> None:
        if zone not in self._zones:
            raise ProviderError(f"unknown local zone {zone!r}; configured: {', '.join(self._zones) or 'none'} "
                                "(set --zones)")
        capacity = self._zones[zone]
        if capacity is None:
            return
        in_zone = sum(1 for f in self.dir.glob("*.zone")
                      if f.read_text().strip() == zone and self._alive_pid(f.stem) is not None)
        if in_zone + self._starting.get(zone, 0) >= capacity:
            raise ZoneExhausted(f"local zone {zone} is full: it holds {capacity} instance(s)")

    async def create(self, spec: InstanceSpec) -> ProviderInstance:
        existing = self._alive_pid(spec.name)
        if existing is not None:
            return ProviderInstance(spec.name, str(existing), "running", zone=self._zone_of(spec.name))
        zone = spec.zone
        if zone is not None:
            self._check_room(zone)
            self._starting[zone] = self._starting.get(zone, 0) + 1
        try:
            process = await asyncio.to_thread(self._spawn, spec)
            self._children[spec.name] = process
            self._pid_file(spec.name).write_text(f"{process.pid}\n")
            if zone is not None:
                self._zone_file(spec.name).write_text(f"{zone}\n")
        finally:
            if zone is not None:
                self._starting[zone] -= 1
        log.info("started local instance %s (pid %d)%s", spec.name, process.pid,
                 f" in zone {spec.zone}" if spec.zone else "")
        return ProviderInstance(spec.name, str(process.pid), "running", zone=spec.zone)

    def _spawn(self, spec: InstanceSpec) -> subprocess.Popen[bytes]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{spec.name}.log", "ab") as out:
            try:
                return subprocess.Popen(self.command_for(spec), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                raise ProviderError(f"cannot start the worker for {spec.name} ({self._command[0]}): {exc}") from exc

    async def delete(self, name: str, provider_id: str | None = None) -> None:
        pid = self._alive_pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # the agent drains, then announces InstanceDeactivated
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._stop_timeout_s
            while self._alive_pid(name) is not None and loop.time() < deadline:
                await asyncio.sleep(0.1)
            if self._alive_pid(name) is not None:
                log.warning("local instance %s (pid %d) ignored SIGTERM for %.0fs; killing it", name, pid,
                            self._stop_timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while self._alive_pid(name) is not None:
                    await asyncio.sleep(0.05)
        self._pid_file(name).unlink(missing_ok=True)
        self._zone_file(name).unlink(missing_ok=True)
        self._children.pop(name, None)

    async def list(self) -> list[ProviderInstance]:
        if not self.dir.is_dir():
            return []
        found = []
        for pid_file in sorted(self.dir.glob("*.pid")):
            name = pid_file.stem
            pid = self._alive_pid(name)
            if pid is None:
                pid_file.unlink(missing_ok=True)  # the process ended on its own (or the machine rebooted)
                self._zone_file(name).unlink(missing_ok=True)
            else:
                found.append(ProviderInstance(name, str(pid), "running", zone=self._zone_of(name)))
        return found

    def _alive_pid(self, name: str) -> int | None:
        child = self._children.get(name)
        if child is not None and child.poll() is None:
            return child.pid
        try:
            pid: int | None = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid is not None and _is_instance_process(pid, name):
            return pid
        # the agent may have been restarted by hand (it recovers its attempts): find it by name
        found = _find_instance_process(name)
        if found is not None and self._pid_file(name).parent.is_dir():
            self._pid_file(name).write_text(f"{found}\n")
        return found

    async def close(self) -> None:
        """Leave the instances running: they belong to the fleet, not to this process."""


def _find_instance_process(name: str) -> int | None:
    """A live process whose command line has `--instance-name NAME`, if any."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_instance_process(int(entry.name), name):
            return int(entry.name)
    return None


def _is_instance_process(pid: int, name: str) -> bool:
    """The pid is alive, not a zombie, and still runs this instance (pids get reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return any(arg == b"--instance-name" and value == name.encode() for arg, value in zip(cmdline, cmdline[1:], strict=False))


def parse_zones(text: str) -> dict[str, int | None]:
    """`local-a,local-b:2` -> {"local-a": None, "local-b": 2}: zone names, each with an optional capacity."""
    zones: dict[str, int | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, capacity = item.partition(":")
        name = name.strip()
        if not name or name in zones:
            raise ProviderError(f"--zones {text!r}: zone names must be non-empty and distinct (e.g. local-a,local-b:2)")
        if capacity.strip() and not capacity.strip().isdigit():
            raise ProviderError(f"--zones {text!r}: the capacity of {name} must be a whole number, not {capacity!r}")
        zones[name] = int(capacity) if capacity.strip() else None
    return zones
