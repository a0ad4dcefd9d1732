"""Isolated workers in the local stack (`squall up --isolated-workers`): the stack's side.

Each local worker runs as a host of its own (deploy/worker_hosts.py) on the fleet LAN
(deploy/fleet_lan.py); the stack makes what the workers reach listen where they can reach it:
- the embedded broker's worker listener (SCRAM over TLS) on the LAN's gateway, 10.213.7.1;
- the embedded object store on the gateway too (the services use that address as well, so every
  URL it hands out works from both sides);
- the front end stays on loopback: workers never call it, it calls them (live logs).
The stack holds the LAN from `squall up` to `squall down` and publishes those two ports, the only
ones the machine answers on from the LAN. `squall down` destroys the stack's worker hosts (the
local provider destroys one whenever it deletes its instance) and lets the LAN go with its last
holder. Every `squall up` first sweeps what earlier runs left behind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlparse

from deploy.fleet_lan import DEFAULT_STATE_ROOT, GATEWAY, SUBNET, FleetLan, FleetLanError, Holder
from deploy.worker_hosts import HostRegistry, WorkerHostError, WorkerHosts, sweep_stale

__all__ = ["GATEWAY", "SUBNET", "IsolationError", "hold_lan", "prepare", "reachable_from_lan", "teardown",
           "worker_hosts_status"]


class IsolationError(RuntimeError):
    """Isolated workers cannot be set up as asked; the message says what to change."""


def prepare(home: Path, say: Callable[[str], None]) -> None:
    """Before the broker and the object store start: clear what earlier runs left, hold the LAN."""
    try:
        removed = sweep_stale()
        if removed:
            say(f"isolation   removed stale worker hosts, namespaces and links: {', '.join(removed)}")
        hold_lan(home, ())
    except (FleetLanError, WorkerHostError, OSError) as exc:
        raise IsolationError(f"isolated workers: {exc}") from exc


def hold_lan(home: Path, ports: Iterable[int]) -> None:
    """Hold the LAN for this stack, answering the workers on these gateway ports."""
    try:
        FleetLan().acquire(Holder.stack(home, ports))
    except FleetLanError as exc:
        raise IsolationError(f"isolated workers: {exc}") from exc


def reachable_from_lan(address: str, what: str) -> None:
    """Refuse an endpoint workers on the LAN cannot reach (loopback is the machine's, not theirs)."""
    host = urlparse(address).hostname if "://" in address else address.rsplit(":", 1)[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        raise IsolationError(f"isolated workers cannot reach {what} at {address}: loopback is the machine's own. "
                             f"Serve it where the fleet LAN reaches it (the gateway {GATEWAY}, or a routable "
                             "address)")


def teardown(home: Path, say: Callable[[str], None]) -> None:
    """Destroy the stack's worker hosts and stop holding the LAN (it goes with its last holder)."""
    if not DEFAULT_STATE_ROOT.is_dir():  # never isolated on this machine since boot
        return
    try:
        for instance in WorkerHosts(home).destroy_all():
            say(f"destroyed worker host of {instance}")
        if FleetLan().release(Holder.stack(home)):
            say("removed the fleet LAN")
        sweep_stale()
    except (FleetLanError, WorkerHostError, OSError) as exc:
        say(f"isolation: {exc}")


def worker_hosts_status(home: Path) -> dict[str, dict[str, object]]:
    """instance -> its host's namespace, address and init, for `squall status`."""
    out: dict[str, dict[str, object]] = {}
    for record in HostRegistry().all():
        if record.home != str(home.resolve()):
            continue
        out[record.instance] = {"netns": record.netns, "address": record.address, "init_pid": record.init_pid,
                                "host_alive": record.init_alive() and Path("/run/netns", record.netns).exists()}
    return out
