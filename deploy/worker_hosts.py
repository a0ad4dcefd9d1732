"""Worker hosts: each local worker of `squall up --isolated-workers` as a machine of its own.

A worker host is, on this one kernel, what a VM is to the fleet:
- its network: a network namespace `squall-w-XXXXXX` joined to the fleet LAN (deploy/fleet_lan.py)
  by a veth pair (the machine's end has the namespace's name, the host's end is `eth0`), with one
  address of 10.213.7.2-126 and a default route through the gateway 10.213.7.1;
- its files: a mount namespace whose root holds its own disk ($SQUALL_HOME/hosts/<instance>/:
  /etc, /var with its own podman storage, /root, /tmp), its state directory, the machine's system
  software and the squall code read-only, and nothing else: not $SQUALL_HOME, not the stack's data
  (deploy/host_root.py);
- its processes: a PID namespace whose init (deploy/host_init.py) outlives the agent, so the podman
  service the agent starts inside, its conmons and containers, the job networks and their firewall
  all live in the host and survive an agent restart, as they would on a VM;
- its name: a UTS namespace with the instance's name as hostname.
The worker reaches the control plane over TCP only: Kafka's worker listener and the object store on
the gateway, and the front end reaches the agent's live-log endpoint on the host's address.

Records live in /run/squall/fleet/hosts/<netns>.json (tmpfs: a reboot takes the namespaces too),
changed under the LAN's lock; each host also has a lock file held while it is created or
destroyed. `sweep_stale` removes what squall left behind (hosts whose stack or init is gone, and any
namespace or link with the prefix that no record claims).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from deploy.fleet_lan import (
    BRIDGE,
    DEFAULT_STATE_ROOT,
    GATEWAY,
    SUBNET,
    FleetLan,
    FleetLanError,
    host_addresses,
    link_exists,
    process_start_time,
    run,
)
from deploy.host_root import Bind, HostRoot, prepare_disk

PREFIX = "squall-w-"
INSIDE_HOME = "/var/lib/squall"  # the agent's --home inside its host
INSIDE_IMAGE_STORE = "/var/lib/containers/machine-images"
INSIDE_CREDENTIALS = "/etc/squall/kafka"
USERNS_LEASES = "/run/squall/sandbox/userns"  # worker/userns.py: one id space per kernel
INIT_TIMEOUT_S = 30.0
CGROUP_ROOT = Path("/sys/fs/cgroup")

log = logging.getLogger("squall.worker_hosts")


class WorkerHostError(RuntimeError):
    """A worker host could not be made or entered; the message says what failed."""


def host_name(home: Path, instance: str) -> str:
    """The namespace's (and the machine's veth end's) name: at most 15 characters, stable."""
    return PREFIX + hashlib.sha256(f"{home.resolve()}\0{instance}".encode()).hexdigest()[:6]


@dataclass(frozen=True)
class HostRecord:
    netns: str
    home: str
    instance: str
    address: str
    disk: str
    init_pid: int | None = None
    init_start: str | None = None
    created_at: float = 0.0

    def init_alive(self) -> bool:
        return self.init_pid is not None and process_start_time(self.init_pid) == self.init_start

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HostRecord:
        return cls(**json.loads(text))


class HostRegistry:
    """The machine's worker hosts (every stack's), one record file each."""

    def __init__(self, state_root: Path = DEFAULT_STATE_ROOT) -> None:
        self.lan = FleetLan(state_root)
        self.dir = state_root / "hosts"

    def load(self, netns: str) -> HostRecord | None:
        try:
            return HostRecord.from_json((self.dir / f"{netns}.json").read_text())
        except (OSError, ValueError, TypeError):
            return None

    def all(self) -> list[HostRecord]:
        out = []
        for path in sorted(self.dir.glob(f"{PREFIX}*.json")) if self.dir.is_dir() else []:
            record = self.load(path.stem)
            if record is not None:
                out.append(record)
        return out

    def save(self, record: HostRecord) -> None:
        path = self.dir / f"{record.netns}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(record.to_json())
        tmp.replace(path)

    def remove(self, netns: str) -> None:
        (self.dir / f"{netns}.json").unlink(missing_ok=True)

    @contextlib.contextmanager
    def host_lock(self, netns: str, wait: bool = True) -> Iterator[bool]:
        """Held while a host is created or destroyed; yields False if `wait` is off and it is taken."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / f"{netns}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True


@dataclass(frozen=True)
class WorkerGiven:
    """What the machine hands a new worker host besides its disk."""

    credentials: Path | None = None  # the worker principal's Kafka credentials (copied onto its disk)
    code: tuple[str, ...] = field(default_factory=tuple)  # read-only: squall, its venv and its Python
    image_store: str | None = None  # the machine's podman image store, read-only


def code_paths() -> tuple[str, ...]:
    """The squall packages, the virtual environment and the Python installation this process runs:
    what an installed worker has (bound read-only at the same paths)."""
    import importlib.util

    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    for package in ("events", "projections", "services", "worker", "deploy", "schemas"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            if os.path.isdir(location):  # (a namespace package also lists its finder's path hook)
                paths.add(os.path.realpath(location))
    ordered = sorted(paths)
    return tuple(p for p in ordered if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in ordered))


def machine_image_store(storage_conf: Path = Path("/etc/containers/storage.conf")) -> str:
    import tomllib

    try:
        conf = tomllib.loads(storage_conf.read_text())
        return str(conf.get("storage", {}).get("graphroot") or "/var/lib/containers/storage")
    except (OSError, ValueError):
        return "/var/lib/containers/storage"


STORAGE_CONF = f"""# a squall worker host's own podman storage; images also come from the machine's store, read-only
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"

[storage.options]
additionalimagestores = ["{INSIDE_IMAGE_STORE}"]
"""


class WorkerHosts:
    """The worker hosts of one stack (one SQUALL_HOME)."""

    def __init__(self, home: Path, registry: HostRegistry | None = None, python: str = sys.executable) -> None:
        self.home = home.resolve()
        self.registry = registry or HostRegistry()
        self.python = python

    def disk_of(self, instance: str) -> Path:
        return self.home / "hosts" / instance

    def state_dir(self, instance: str) -> Path:
        return self.home / "instances" / instance

    def get(self, instance: str) -> HostRecord | None:
        return self.registry.load(host_name(self.home, instance))

    def ours(self) -> list[HostRecord]:
        return [r for r in self.registry.all() if r.home == str(self.home)]

    def alive(self, instance: str) -> bool:
        """Its init runs and its namespace is there (deleting the namespace loses the host)."""
        record = self.get(instance)
        return record is not None and record.init_alive() and Path("/run/netns", record.netns).exists()

    def enter_command(self, instance: str) -> list[str]:
        return [self.python, "-m", "deploy.host_init", "enter", "--netns", host_name(self.home, instance), "--"]

    # --- create -------------------------------------------------------------------------------
    def create(self, instance: str, given: WorkerGiven) -> HostRecord:
        """Make the host (idempotent: a live one is returned as it is)."""
        netns = host_name(self.home, instance)
        with self.registry.host_lock(netns):
            existing = self.registry.load(netns)
            if existing is not None and existing.init_alive() and Path("/run/netns", netns).exists():
                return existing
            if existing is not None:
                self._destroy_locked(existing)
            record = self._lease(netns, instance)
            try:
                self._network(record)
                self._disk(record, given)
                record = self._start_init(record, given)
            except BaseException:
                self._destroy_locked(record)
                raise
            self.registry.save(record)
            log.info("worker host %s for %s: %s on %s", netns, instance, record.address, BRIDGE)
            return record

    def _lease(self, netns: str, instance: str) -> HostRecord:
        with self.registry.lan.locked():
            if not link_exists(BRIDGE):
                raise WorkerHostError(f"the fleet LAN ({BRIDGE}) is not up: isolated workers need `squall up "
                                      "--isolated-workers` (it holds the LAN)")
            taken = {r.address for r in self.registry.all()}
            free = [a for a in host_addresses() if a not in taken]
            if not free:
                raise WorkerHostError(f"all {len(host_addresses())} worker host addresses of {SUBNET} are taken")
            record = HostRecord(netns=netns, home=str(self.home), instance=instance, address=free[0],
                                disk=str(self.disk_of(instance)), created_at=time.time())
            self.registry.save(record)  # claimed before the namespace exists: the sweep leaves it alone
            return record

    def _network(self, r: HostRecord) -> None:
        prefix = SUBNET.split("/")[1]
        run("ip", "netns", "add", r.netns)
        _ip_batch([f"link add {r.netns} type veth peer name eth0 netns {r.netns}",
                   f"link set {r.netns} addrgenmode none", f"link set {r.netns} master {BRIDGE}",
                   f"link set {r.netns} up"])
        _ip_batch(["link set lo up", "link set eth0 addrgenmode none", f"addr add {r.address}/{prefix} dev eth0",
                   "link set eth0 up", f"route add default via {GATEWAY}"], netns=r.netns)

    def _disk(self, r: HostRecord, given: WorkerGiven) -> None:
        disk = Path(r.disk)
        prepare_disk(disk)
        etc = disk / "etc"
        (etc / "containers" / "storage.conf").write_text(STORAGE_CONF)
        (etc / "hostname").write_text(f"{r.instance}\n")
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n{r.address}\t{r.instance}\n")
        (disk / "var" / "lib" / "containers" / "storage").mkdir(parents=True, exist_ok=True)
        if given.credentials is not None:
            _install_credentials(given.credentials, etc / "squall" / "kafka")
        self.state_dir(r.instance).mkdir(parents=True, exist_ok=True)
        _seed_cache(disk / "root")

    def _start_init(self, r: HostRecord, given: WorkerGiven) -> HostRecord:
        binds = [Bind(str(self.state_dir(r.instance)), f"{INSIDE_HOME}/instances/{r.instance}", read_only=False)]
        binds += [Bind(p, p) for p in given.code]
        if given.image_store:
            binds.append(Bind(given.image_store, INSIDE_IMAGE_STORE))
        Path(USERNS_LEASES).mkdir(parents=True, exist_ok=True, mode=0o700)
        binds.append(Bind(USERNS_LEASES, USERNS_LEASES, read_only=False))
        root = HostRoot(disk=r.disk, hostname=r.instance, binds=tuple(binds))
        runtime = self.registry.dir.parent / "roots" / r.netns
        runtime.mkdir(parents=True, exist_ok=True)
        spec = runtime / "root.json"
        spec.write_text(root.to_json())
        cmd = [self.python, "-m", "deploy.host_init", "init", "--netns", r.netns, "--root", str(spec),
               "--new-root", str(runtime / "root"), "--log", str(Path(r.disk) / "init.log")]
        (runtime / "root").mkdir(exist_ok=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INIT_TIMEOUT_S,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            raise WorkerHostError(f"the init of worker host {r.netns} did not start within {INIT_TIMEOUT_S:g} s") \
                from exc
        try:
            answer = json.loads(proc.stdout.splitlines()[0])
        except (IndexError, ValueError):
            answer = {"error": (proc.stderr or proc.stdout).strip()[-2000:]}
        if "pid" not in answer:
            raise WorkerHostError(f"worker host {r.netns} did not start: {answer.get('error')}")
        pid = int(answer["pid"])
        return replace(r, init_pid=pid, init_start=process_start_time(pid))

    # --- destroy ------------------------------------------------------------------------------
    def destroy(self, instance: str) -> bool:
        """Power the host off for good: every process in it, its network and its disk. True if
        there was one."""
        netns = host_name(self.home, instance)
        with self.registry.host_lock(netns):
            record = self.registry.load(netns)
            if record is not None:
                self._destroy_locked(record)
            # a host of this name is new again (and asking after one already gone leaves no lock file)
            (self.registry.dir / f"{netns}.lock").unlink(missing_ok=True)
            return record is not None

    def destroy_all(self) -> list[str]:
        gone = []
        for record in self.ours():
            if self.destroy(record.instance):
                gone.append(record.instance)
        return gone

    def _destroy_locked(self, r: HostRecord) -> None:
        destroy_remains(r, self.registry)


def destroy_remains(r: HostRecord, registry: HostRegistry) -> None:
    """Kill the host's init (so every process of the host), remove its namespace, veth pair, the
    cgroups and user-namespace leases of its containers, its disk and its record."""
    if r.init_alive():
        assert r.init_pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(r.init_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while r.init_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    _kill_namespace_stragglers(r.netns)
    container_ids = _container_ids(Path(r.disk))
    if Path("/run/netns", r.netns).exists():
        run("ip", "netns", "del", r.netns, check=False)
    if link_exists(r.netns):
        run("ip", "link", "del", r.netns, check=False)
    _remove_container_cgroups(container_ids)
    _release_userns_leases(f"squall-{r.instance}-")
    shutil.rmtree(registry.dir.parent / "roots" / r.netns, ignore_errors=True)
    if Path(r.disk).is_dir():
        shutil.rmtree(r.disk, ignore_errors=True)
    with registry.lan.locked():
        registry.remove(r.netns)


def _ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    try:
        proc = subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetLanError(f"{' '.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        raise FleetLanError(f"ip {'-n ' + netns + ' ' if netns else ''}failed on {commands}: {proc.stderr.strip()}")


def _install_credentials(source: Path, target_dir: Path) -> None:
    """The worker principal's credentials on the host's disk, its CA beside it (as a VM's startup
    script installs them): nothing else of $SQUALL_HOME's secrets."""
    data = json.loads(source.read_text())
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data.get("ca_file"):
        shutil.copyfile(data["ca_file"], target_dir / "ca.crt")
        data["ca_file"] = f"{INSIDE_CREDENTIALS}/ca.crt"
    path = target_dir / "worker.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def _seed_cache(root_home: Path) -> None:
    """The compiled JVM entryway, as a worker image would ship it (else each host compiles its own)."""
    cache = Path.home() / ".cache" / "squall" / "jvm-entryway"
    target = root_home / ".cache" / "squall" / "jvm-entryway"
    if cache.is_dir() and not target.exists():
        shutil.copytree(cache, target, ignore=shutil.ignore_patterns(".build-*"))


def _kill_namespace_stragglers(netns: str) -> None:
    """Processes outside the host's PID namespace still in its network namespace (a shim whose
    agent just died): they are ours by the name."""
    if not Path("/run/netns", netns).exists():
        return
    proc = run("ip", "netns", "pids", netns, check=False)
    for word in proc.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(word), signal.SIGKILL)


def _container_ids(disk: Path) -> list[str]:
    try:
        data = json.loads((disk / "var/lib/containers/storage/overlay-containers/containers.json").read_text())
    except (OSError, ValueError):
        return []
    return [c["id"] for c in data if isinstance(c, dict) and "id" in c]


def _remove_container_cgroups(container_ids: Sequence[str]) -> None:
    """A host killed at once leaves its containers' (empty) cgroups behind; podman (cgroupfs)
    names them libpod-<id> under libpod_parent in every hierarchy."""
    if not container_ids or not CGROUP_ROOT.is_dir():
        return
    names = {f"libpod-{cid}" for cid in container_ids}
    for parent in CGROUP_ROOT.glob("*/libpod_parent"):
        for name in names:
            cgroup = parent / name
            if cgroup.is_dir():
                for child in sorted(cgroup.rglob("*"), reverse=True):
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    cgroup.rmdir()


def _release_userns_leases(owner_prefix: str, root: Path = Path(USERNS_LEASES)) -> int:
    """End the user-namespace leases of a dead host's containers (worker/userns.py's layout:
    slots/<n> names the owner, owners/<name> the slot)."""
    slots = root / "slots"
    released = 0
    for slot in slots.iterdir() if slots.is_dir() else []:
        try:
            owner = slot.read_text()
        except OSError:
            continue
        if owner.startswith(owner_prefix):
            slot.unlink(missing_ok=True)
            (root / "owners" / owner).unlink(missing_ok=True)
            released += 1
    return released


def sweep_stale(registry: HostRegistry | None = None) -> list[str]:
    """Remove every worker host, namespace and veth squall left behind on this machine: hosts whose
    stack is gone (no stack.json in its home) or whose init died, and namespaces or links named
    PREFIX* that no record claims. Hosts being created or destroyed are left alone. Returns what
    was removed."""
    registry = registry or HostRegistry()
    removed = []
    claimed = set()
    for record in registry.all():
        claimed.add(record.netns)
        stack_gone = not (Path(record.home) / "stack.json").exists()
        dead = record.init_pid is not None and not record.init_alive()
        fresh_claim = record.init_pid is None and time.time() - record.created_at < INIT_TIMEOUT_S * 2
        if not (stack_gone or dead) or fresh_claim:
            continue
        with registry.host_lock(record.netns, wait=False) as got:
            if got:
                destroy_remains(record, registry)
                (registry.dir / f"{record.netns}.lock").unlink(missing_ok=True)
                removed.append(record.netns)
    netns_dir = Path("/run/netns")
    for path in sorted(netns_dir.glob(f"{PREFIX}*")) if netns_dir.is_dir() else []:
        if path.name not in claimed:
            _kill_namespace_stragglers(path.name)
            run("ip", "netns", "del", path.name, check=False)
            removed.append(path.name)
    for link in sorted(Path("/sys/class/net").glob(f"{PREFIX}*")):
        if link.name not in claimed:
            run("ip", "link", "del", link.name, check=False)
            removed.append(link.name)
    return removed
