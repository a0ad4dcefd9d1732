"""The local provider: each instance is a worker agent process on this machine (the embedded default).

    python -m worker --instance-name N --cores C --memory-gib M --storage-gib S --pool P --region local
        --bootstrap ... --topic-prefix ... --home ... --system-bucket ... [--storage-endpoint ...]
        [--database-url ...] [--preemptible]

Processes run in their own session (they outlive an autoscaler restart) and are tracked by pid
files under <home>/instances/<name>.pid, so `list` finds them again after a restart. The command
is configurable: `python -m services.simworker` takes the same flags and runs nothing.

An instance here is a machine whose only program is its agent, so an agent that dies is restarted,
as systemd restarts it on a VM (`heal`, every autoscaler loop): the same command (kept in
<name>.cmd), whose journal recovers the attempts it had, so its running jobs are neither lost nor
run twice. At once the first time, then after 1, 2, 4, 8 s; an agent that died 6 times without
living a minute in between is given up: it drops out of `list`, and the autoscaler deactivates the
instance (its jobs are retried elsewhere). An agent that exited by itself with 0 drained and
announced its end: it stays down. Restart counts: <name>.restarts (`squall status` shows them, and
each agent's metrics endpoint: a loopback port chosen at create, in the command).

Zones (optional, `--zones local-a,local-b:2`): names the autoscaler chooses between, each with an
optional capacity (how many instances it holds at once). A create in a full zone is refused as a
cloud zone without capacity refuses it (ZoneExhausted), so one machine shows how the autoscaler
weighs zones by their recent success. An instance's zone is kept in <home>/instances/<name>.zone;
an instance whose agent is being restarted still holds its place in its zone.

Preemption, simulated as a cloud does it (`preempt`, `squall preempt INSTANCE`): a preemptible
instance dies whole — no restart, its agent killed, its containers and scratch mounts gone — and the
provider records it (<name>.preempted), which `preempted()` reports to the autoscaler as a cloud's
preemption notice would.

With `isolated` (`squall up --isolated-workers`), each instance is a worker host of its own
(deploy/worker_hosts.py: network, mount, PID and UTS namespaces on the fleet LAN): created with the
instance, the agent entered into it (its state directory, credentials and home as the host sees
them; no database URL; its live-log endpoint on the host's address; the whole fleet LAN added to
its job firewall), restarted into the same host, and destroyed with the instance. A host that is
gone (its init killed, its namespace deleted) is a lost machine: its agent is not restarted, what
is left of it is removed, and the instance drops out of `list`. Preempting one destroys its host
whole. An isolated agent serves its metrics on its host's address (ISOLATED_METRICS_PORT: the host
has the port space to itself), where the machine scrapes it as it asks the live-log endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.worker_hosts import (
    INSIDE_CREDENTIALS,
    INSIDE_HOME,
    WorkerGiven,
    WorkerHosts,
    code_paths,
    machine_image_store,
)
from events.process.config import ServiceConfig
from services.providers.base import InstanceSpec, ProviderError, ProviderInstance, ZoneExhausted

log = logging.getLogger(__name__)

GIB = 1024**3
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "worker")
SIMULATED_WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "services.simworker")
RESTART_DELAYS_S = (0.0, 1.0, 2.0, 4.0, 8.0)  # one per death in a row; one more death gives up
STABLE_AFTER_S = 60.0
PREEMPTED_SUFFIX = ".preempted"
ISOLATED_METRICS_PORT = 9464  # an isolated agent's Prometheus port, on its host's LAN address


class LocalProvider:
    name = "local"

    def __init__(self, config: ServiceConfig, command: Sequence[str] = WORKER_COMMAND,
                 extra_args: Sequence[str] = (), stop_timeout_s: float = 30.0,
                 zones: Mapping[str, int | None] | None = None,
                 worker_bootstrap: str | None = None, worker_credentials: Path | None = None,
                 restart_delays_s: Sequence[float] = RESTART_DELAYS_S, isolated: bool = False) -> None:
        self._config = config
        self._zones = dict(zones or {})  # zone -> capacity (None: unlimited)
        self._starting: dict[str, int] = {}  # zone -> creates in flight (their zone files are not written yet)
        self._command = tuple(command)
        self._extra_args = tuple(extra_args)
        # workers reach Kafka as hosts of their own would: the TLS listener, the worker principal
        self._worker_bootstrap = worker_bootstrap or config.bootstrap_servers
        self._worker_credentials = worker_credentials
        self._stop_timeout_s = stop_timeout_s
        self.dir = config.home / "instances"
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # reaped by us, so no zombies
        self._restart_delays_s = tuple(restart_delays_s)
        self._deaths: dict[str, tuple[int, float]] = {}  # name -> (deaths in a row, not restarted before)
        self._started_at: dict[str, float] = {}
        self.hosts = WorkerHosts(config.home) if isolated else None

    def _pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def command_for(self, spec: InstanceSpec, address: str | None = None) -> list[str]:
        """The agent's command; for an isolated worker (`address`: its host's), as its host sees it."""
        if self.hosts is not None and address is not None:
            return self._isolated_command(spec, address)
        c = self._config
        args = [*self._command, "--instance-name", spec.name, "--cores", str(max(1, spec.cores_mcpu // 1000)),
                "--memory-gib", f"{spec.memory_bytes / GIB:g}", "--storage-gib", str(spec.storage_gib),
                "--pool", spec.pool, "--region", spec.region,
                "--bootstrap", self._worker_bootstrap, "--topic-prefix", c.topic_prefix, "--home", str(c.home),
                "--system-bucket", c.system_bucket]
        if c.storage_endpoint:
            args += ["--storage-endpoint", c.storage_endpoint]
        if self._worker_credentials is not None:
            args += ["--kafka-credentials", str(self._worker_credentials)]
        if c.database_url:
            args += ["--database-url", c.database_url]
        if spec.preemptible:
            args.append("--preemptible")
        # its Prometheus endpoint (MJS/MJC counters, job runtimes); kept in <name>.cmd, so a restart keeps it
        args += ["--metrics-port", str(free_loopback_port())]
        return args + list(self._extra_args)

    def _isolated_command(self, spec: InstanceSpec, address: str) -> list[str]:
        from deploy.fleet_lan import SUBNET

        assert self.hosts is not None
        c = self._config
        args = [*self._command, "--instance-name", spec.name, "--cores", str(max(1, spec.cores_mcpu // 1000)),
                "--memory-gib", f"{spec.memory_bytes / GIB:g}", "--storage-gib", str(spec.storage_gib),
                "--pool", spec.pool, "--region", spec.region,
                "--bootstrap", self._worker_bootstrap, "--topic-prefix", c.topic_prefix, "--home", INSIDE_HOME,
                "--system-bucket", c.system_bucket, "--agent-host", address,
                "--metrics-host", address, "--metrics-port", str(ISOLATED_METRICS_PORT),
                # jobs reach nothing on the fleet LAN: the gateway (the control plane) and the other workers
                "--job-firewall-block", SUBNET]
        if c.storage_endpoint:
            args += ["--storage-endpoint", c.storage_endpoint]
        if self._worker_credentials is not None:
            args += ["--kafka-credentials", f"{INSIDE_CREDENTIALS}/worker.json"]
        if spec.preemptible:
            args.append("--preemptible")
        return [*self.hosts.enter_command(spec.name), *args, *self._extra_args]

    def _make_host(self, name: str) -> str:
        assert self.hosts is not None
        given = WorkerGiven(credentials=self._worker_credentials, code=code_paths(),
                            image_store=machine_image_store())
        try:
            return self.hosts.create(name, given).address
        except Exception as exc:
            raise ProviderError(f"cannot make the worker host of {name}: {exc}") from exc

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
        # an instance whose agent died and is being restarted (heal) still holds its place
        in_zone = sum(1 for f in self.dir.glob("*.zone") if self._zone_of(f.stem) == zone
                      and (self._alive_pid(f.stem) is not None or self._command_file(f.stem).exists()))
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
            address = await asyncio.to_thread(self._make_host, spec.name) if self.hosts is not None else None
            command = self.command_for(spec, address)
            process = await asyncio.to_thread(self._spawn, spec.name, command)
            if zone is not None:
                self._zone_file(spec.name).write_text(f"{zone}\n")
        finally:
            if zone is not None:
                self._starting[zone] -= 1
        self._command_file(spec.name).write_text(json.dumps(command))
        log.info("started local instance %s (pid %d)%s", spec.name, process.pid, f" in zone {zone}" if zone else "")
        return ProviderInstance(spec.name, str(process.pid), "running", zone=zone)

    def _command_file(self, name: str) -> Path:
        return self.dir / f"{name}.cmd"

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{name}.log", "ab") as out:
            try:
                process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                raise ProviderError(f"cannot start the worker for {name} ({command[0]}): {exc}") from exc
        self._children[name] = process
        self._started_at[name] = time.monotonic()
        self._pid_file(name).write_text(f"{process.pid}\n")
        return process

    async def heal(self) -> list[str]:
        """Restart the agents that died (see the module doc); returns the instances restarted."""
        if not self.dir.is_dir():
            return []
        restarted = []
        now = time.monotonic()
        await self._forget_lost_hosts()
        for command_file in sorted(self.dir.glob("*.cmd")):  # the instances we run and have not given up
            name = command_file.stem
            if self._alive_pid(name) is not None:
                if now - self._started_at.get(name, 0.0) >= STABLE_AFTER_S:
                    self._deaths.pop(name, None)
                continue
            try:
                command = json.loads(command_file.read_text())
            except (OSError, ValueError):
                continue  # being deleted
            child = self._children.get(name)
            if child is not None and child.returncode == 0:
                log.info("the agent of %s exited after draining; it stays down", name)
                self._command_file(name).unlink(missing_ok=True)
                continue
            deaths, not_before = self._deaths.get(name, (0, 0.0))
            if not_before == 0.0:  # just found dead
                deaths += 1
                why = _exit_reason(child)
                if deaths > len(self._restart_delays_s):
                    log.error("the agent of %s %s, its %dth death in a row; giving the instance up", name, why,
                              deaths)
                    self._command_file(name).unlink(missing_ok=True)
                    self._deaths.pop(name, None)
                    continue
                not_before = now + self._restart_delays_s[deaths - 1]
                log.warning("the agent of %s %s; restarting it in %.0f s", name, why, not_before - now)
                self._deaths[name] = (deaths, not_before)
            if now < not_before:
                continue
            try:
                process = await asyncio.to_thread(self._spawn, name, command)
            except ProviderError as exc:
                log.error("%s; trying again later", exc)
                self._deaths[name] = (deaths, now + self._restart_delays_s[-1])
                continue
            self._deaths[name] = (deaths, 0.0)
            count = self._restart_count(name) + 1
            (self.dir / f"{name}.restarts").write_text(json.dumps({"restarts": count}))
            log.warning("restarted the agent of %s (pid %d, restart #%d)", name, process.pid, count)
            restarted.append(name)
        return restarted

    async def _forget_lost_hosts(self) -> list[str]:
        """Isolated instances whose host is gone are lost machines: remove what is left of each (a
        partitioned agent still running in it dies with it) and stop tracking them."""
        if self.hosts is None:
            return []
        lost = []
        for pid_file in sorted(self.dir.glob("*.pid")):
            name = pid_file.stem
            if self.hosts.get(name) is None or self.hosts.alive(name):
                continue
            log.error("the worker host of %s is gone (its init or its network namespace); the instance is lost", name)
            self._command_file(name).unlink(missing_ok=True)
            await asyncio.to_thread(self.hosts.destroy, name)
            pid_file.unlink(missing_ok=True)
            self._zone_file(name).unlink(missing_ok=True)
            self._children.pop(name, None)
            self._deaths.pop(name, None)
            lost.append(name)
        return lost

    def _restart_count(self, name: str) -> int:
        try:
            return int(json.loads((self.dir / f"{name}.restarts").read_text())["restarts"])
        except (OSError, ValueError, KeyError):
            return 0

    async def delete(self, name: str, provider_id: str | None = None) -> None:
        self._command_file(name).unlink(missing_ok=True)  # first: heal must not restart what we stop
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
        if self.hosts is not None:
            await asyncio.to_thread(self.hosts.destroy, name)
        self._pid_file(name).unlink(missing_ok=True)
        self._zone_file(name).unlink(missing_ok=True)
        (self.dir / f"{name}.restarts").unlink(missing_ok=True)
        (self.dir / f"{name}{PREEMPTED_SUFFIX}").unlink(missing_ok=True)
        self._children.pop(name, None)
        self._deaths.pop(name, None)

    async def preempted(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob(f"*{PREEMPTED_SUFFIX}")) if self.dir.is_dir() else []

    async def list(self) -> list[ProviderInstance]:
        if not self.dir.is_dir():
            return []
        await self._forget_lost_hosts()
        found = []
        for pid_file in sorted(self.dir.glob("*.pid")):
            name = pid_file.stem
            pid = self._alive_pid(name)
            if pid is not None:
                found.append(ProviderInstance(name, str(pid), "running", zone=self._zone_of(name)))
            elif (self.dir / f"{name}{PREEMPTED_SUFFIX}").exists():  # `preempted()` reports it
                found.append(ProviderInstance(name, "", "preempted", zone=self._zone_of(name)))
            elif self._command_file(name).exists():  # its agent died; heal restarts it
                found.append(ProviderInstance(name, "", "restarting", zone=self._zone_of(name)))
            else:
                pid_file.unlink(missing_ok=True)  # it ended for good (drained, given up, machine rebooted)
                self._zone_file(name).unlink(missing_ok=True)
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


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def preempt(home: Path, name: str) -> None:
    """Preempt the local instance `name` of the stack in `home`, as a cloud reclaims a spot VM: the
    instance must be preemptible; it is recorded as preempted first, then dies whole (its agent is
    killed and never restarted, its containers and scratch mounts go with it)."""
    directory = home / "instances"
    command_file = directory / f"{name}.cmd"
    try:
        command = json.loads(command_file.read_text())
    except (OSError, ValueError) as exc:
        raise ProviderError(f"no live local instance {name!r} under {directory}") from exc
    if "--preemptible" not in command:
        raise ProviderError(f"instance {name} is not preemptible: only a preemptible instance can be preempted")
    (directory / f"{name}{PREEMPTED_SUFFIX}").write_text(f"{time.time():.3f}\n")
    command_file.unlink(missing_ok=True)  # its init is gone with it: no restart
    try:  # its pid file first: another stack on this machine may run an instance of the same name
        pid: int | None = int((directory / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid is None or not _is_instance_process(pid, name):
        pid = _find_instance_process(name)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    hosts = WorkerHosts(home)
    if hosts.get(name) is not None:  # an isolated worker: its host dies whole (containers, mounts, network)
        hosts.destroy(name)
        return
    subprocess.run(["podman", "rm", "-f", "-t", "0", "--filter", f"label=squall.instance={name}"],
                   capture_output=True, timeout=60, check=False)
    scratch = str(directory / name)
    for line in Path("/proc/mounts").read_text().splitlines():
        mount_point = line.split()[1]
        if mount_point == scratch or mount_point.startswith(scratch + "/"):
            subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30, check=False)


def _exit_reason(child: subprocess.Popen[bytes] | None) -> str:
    if child is None or child.returncode is None:
        return "is gone"
    code = child.returncode
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


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
