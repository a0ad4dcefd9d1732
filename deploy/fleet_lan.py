"""The fleet LAN: the network isolated worker hosts (deploy/worker_hosts.py) share with the control plane.

    squall-fleet0   a bridge on the machine, 10.213.7.1/25: the control plane as the workers see it
    10.213.7.2-126  one address per worker host, on the host's end of its veth pair
The whole LAN lives in 10.213.7.0/25 (the upper half, 10.213.7.128/25, is the job networks'), has
no IPv6 (no link-local addresses either), and is firewalled on the machine by the nftables table
`inet squall_fleet`:
- from the LAN the machine answers only on the gateway's TCP ports its holders publish (the Kafka
  listener workers use, the object store), and to connections it opened itself (the front end
  asking a worker's live-log endpoint); everything else is rejected at once (`refused` counter);
- nothing from the LAN is routed anywhere (`forward`: rejected and counted): the hosts reach the
  machine's published ports and each other, and no other network, so a worker host (and its jobs)
  send nothing beyond the one private /24 the stack made. Images come from the machine's store
  (deploy/worker_hosts.py), not from a registry the host would pull from.

The LAN is shared by every stack on the machine and kept while anyone holds it: a process (a test
session that runs a broker on the gateway) or a stack (`squall up --isolated-workers`, until its
`squall down`). Holders and worker hosts are files under /run/squall/fleet, changed under one
lock; the last holder to leave, with no worker host left, removes the bridge and the table.
`render_rules` is pure; `FleetLan` does the I/O (iproute2, nft).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import ProcessTable

BRIDGE = "squall-fleet0"
SUBNET = "10.213.7.0/25"
GATEWAY = "10.213.7.1"
NFT_TABLE = "squall_fleet"
DEFAULT_STATE_ROOT = Path("/run/squall/fleet")
REJECT = "reject with icmpx admin-prohibited"
STARTING_GRACE_S = 600.0  # a stack being brought up holds the LAN before its stack.json exists


class FleetLanError(RuntimeError):
    """The LAN could not be set up; the message has the failing command's own words."""


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


@dataclass(frozen=True)
class Holder:
    """Someone who needs the LAN: a process (pid + start time) or a stack (its home), and the
    gateway's TCP ports it serves the workers on."""

    key: str
    ports: tuple[int, ...] = ()
    pid: int | None = None
    start: str | None = None
    home: str | None = None
    since: float = 0.0

    @classmethod
    def process(cls, ports: Iterable[int] = (), pid: int | None = None) -> Holder:
        pid = pid or os.getpid()
        start = process_start_time(pid)
        return cls(f"pid-{pid}-{start}", tuple(sorted(set(ports))), pid=pid, start=start)

    @classmethod
    def stack(cls, home: Path, ports: Iterable[int] = ()) -> Holder:
        digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
        return cls(f"stack-{digest}", tuple(sorted(set(ports))), home=str(home.resolve()), since=time.time())

    def alive(self) -> bool:
        """A process holds while it runs; a stack from `squall up` until its `squall down`, or until
        none of its processes runs any more (a stack killed without `squall down`)."""
        if self.pid is not None:
            return process_start_time(self.pid) == self.start
        if self.home is None:
            return False
        if time.time() - self.since < STARTING_GRACE_S:
            return True
        # a stack.json alone is not a running stack: one killed with its machine session leaves it
        home = Path(self.home)
        return (home / "stack.json").exists() and stack_processes_run(home)

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "ports": self.ports, "pid": self.pid, "start": self.start,
                           "home": self.home, "since": self.since})

    @classmethod
    def from_json(cls, text: str) -> Holder:
        d = json.loads(text)
        return cls(d["key"], tuple(d.get("ports") or ()), d.get("pid"), d.get("start"), d.get("home"),
                   float(d.get("since") or 0.0))


def stack_processes_run(home: Path) -> bool:
    """Any of the stack's own processes (supervisor, services: <home>/run/*.pid) still runs."""
    table = ProcessTable(home)
    return any(table.pid(name) is not None for name in table.names())


def host_addresses() -> list[str]:
    """Worker host addresses in lease order (the gateway excluded)."""
    net = ipaddress.ip_network(SUBNET)
    return [str(a) for a in net.hosts() if str(a) != GATEWAY]


def render_rules(ports: Iterable[int]) -> str:
    """The nft script that replaces the LAN's table (atomic, idempotent)."""
    elements = sorted({int(p) for p in ports})
    if any(not 0 < p < 65536 for p in elements):
        raise ValueError(f"not TCP ports: {elements}")
    bridge = json.dumps(BRIDGE)
    port_set = f" elements = {{ {', '.join(map(str, elements))} }};" if elements else ""
    return (f"table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\ntable inet {NFT_TABLE} {{\n"
            f"  set gateway_ports {{ type inet_service;{port_set} }}\n"
            "  counter refused { }\n"
            "  chain input {\n    type filter hook input priority filter - 10; policy accept;\n"
            f"    iifname {bridge} ct state established,related accept\n"
            f"    iifname {bridge} ip daddr {GATEWAY} tcp dport @gateway_ports accept\n"
            f"    iifname {bridge} counter name refused {REJECT}\n  }}\n"
            "  chain forward {\n    type filter hook forward priority filter - 10; policy accept;\n"
            f"    iifname {bridge} counter name refused {REJECT}\n"
            f"    oifname {bridge} counter name refused {REJECT}\n  }}\n}}\n")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetLanError(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise FleetLanError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


class FleetLan:
    def __init__(self, state_root: Path = DEFAULT_STATE_ROOT) -> None:
        self.root = state_root
        self.holders_dir = state_root / "holders"
        self.hosts_dir = state_root / "hosts"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Every change to the LAN, its holders and its hosts happens under this lock."""
        for d in (self.holders_dir, self.hosts_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.root / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def acquire(self, holder: Holder) -> None:
        """Hold the LAN (made if absent) and open the holder's ports on the gateway."""
        if os.geteuid() != 0:
            raise FleetLanError("isolated workers need root (network namespaces, a bridge, nftables)")
        with self.locked():
            self._ensure_bridge()
            path = self.holders_dir / f"{holder.key}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(holder.to_json())
            tmp.replace(path)
            self._apply()

    def release(self, holder: Holder) -> bool:
        """Stop holding; the LAN goes with its last holder once no worker host is left.
        True when it is gone."""
        with self.locked():
            (self.holders_dir / f"{holder.key}.json").unlink(missing_ok=True)
            return self._shrink()

    def sweep(self) -> bool:
        """Drop holders that are gone; remove the LAN if nobody holds it (True when gone)."""
        if not self.root.is_dir():
            return True
        with self.locked():
            return self._shrink()

    def holders(self) -> list[Holder]:
        """The live holders (under the lock); dead ones' files are removed."""
        out = []
        for path in sorted(self.holders_dir.glob("*.json")):
            try:
                holder = Holder.from_json(path.read_text())
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)
                continue
            if holder.alive():
                out.append(holder)
            else:
                path.unlink(missing_ok=True)
        return out

    def _shrink(self) -> bool:
        if self.holders() or any(self.hosts_dir.glob("*.json")):
            if link_exists(BRIDGE):
                self._apply()
            return False
        run("nft", "delete", "table", "inet", NFT_TABLE, check=False)
        if link_exists(BRIDGE):
            run("ip", "link", "del", BRIDGE)
        return True

    def _ensure_bridge(self) -> None:
        if link_exists(BRIDGE):
            return
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        try:
            run("ip", "link", "set", BRIDGE, "addrgenmode", "none")  # no IPv6 link-local address
            run("ip", "addr", "add", f"{GATEWAY}/{SUBNET.split('/')[1]}", "dev", BRIDGE)
            run("ip", "link", "set", BRIDGE, "up")
        except BaseException:
            run("ip", "link", "del", BRIDGE, check=False)
            raise

    def _apply(self) -> None:
        ports = {p for h in self.holders() for p in h.ports}
        nft = shutil.which("nft") or "/usr/sbin/nft"
        try:
            proc = subprocess.run([nft, "-f", "-"], input=render_rules(ports), capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FleetLanError(f"cannot run nft: {exc} (install nftables)") from exc
        if proc.returncode != 0:
            raise FleetLanError(f"nft refused the fleet LAN's rules: {proc.stderr.strip()}")

    def refused_count(self) -> int:
        proc = run("nft", "-j", "list", "counter", "inet", NFT_TABLE, "refused", check=False)
        if proc.returncode != 0:
            return 0
        for item in json.loads(proc.stdout).get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        return 0
