"""The firewall between jobs and everything that is not the internet: nftables rules on the job networks.

From the job bridges (worker/job_networks.py) a packet may not reach:
- any address of the host itself (the bridge gateways, the host's interfaces, anything bound to
  0.0.0.0): everything arriving from a job bridge at the host's INPUT hook is rejected;
- the metadata server 169.254.169.254 (it hands out the instance's credentials);
- the control plane: the broker, the object store, the front end and worker HTTP endpoints, as
  ADDRESS[:PORT] entries the worker is configured with (a port blocks that port, none the address;
  a NETWORK/PREFIX every address in it, e.g. the fleet LAN of an isolated worker);
- from a no-egress (private) network, anything outside it.
Rejections are ICMP admin-prohibited, so a job's connect() fails at once with "No route to host"
rather than hanging; named counters (host, metadata, control_plane, no_egress) count them.

The rules live in their own nftables table `inet squall_jobs`, beside netavark's (iptables-nft)
rules: a reject in any table is final. Every agent on a host (per network namespace) registers as a
holder; the table is rendered from the union of the live holders' policies and replaced atomically
(one `nft -f` transaction), and deleted when the last holder releases it (`squall down` also sweeps
holders whose process is gone). `render` is pure; `JobFirewall` does the I/O.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TABLE = "squall_jobs"
METADATA_ADDRESSES = ("169.254.169.254",)
DEFAULT_STATE_ROOT = Path("/run/squall/job-firewall")
REJECT = "reject with icmpx admin-prohibited"



class FirewallError(RuntimeError):
    """The rules could not be installed; the message has nft's own words."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """An address (or a NETWORK/PREFIX) to block, on one port or (port None) on every port."""

    address: str
    port: int | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.address, strict=False).version


def parse_endpoint(text: str) -> tuple[str, int | None]:
    """'HOST', 'HOST:PORT', '[V6]:PORT' or a bare IPv6 address -> (host, port); a URL's scheme and
    path are ignored, so a front end URL can be passed as it is."""
    value = text.strip()
    if "://" in value:
        value = value.split("://", 1)[1].split("/", 1)[0]
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
        raise ValueError(f"not an endpoint (HOST[:PORT]): {text!r}")
    return host, int(port) if port else None


def resolve_endpoints(texts: Iterable[str]) -> list[Endpoint]:
    """Endpoints for every address each HOST[:PORT] resolves to now (DNS names included)."""
    out: set[Endpoint] = set()
    for text in texts:
        host, port = parse_endpoint(text)
        if "/" in host:
            if port is not None:
                raise ValueError(f"a network blocks every port: {text!r}")
            try:
                out.add(Endpoint(str(ipaddress.ip_network(host, strict=False))))
            except ValueError as exc:
                raise ValueError(f"not a network (ADDRESS/PREFIX): {text!r}") from exc
            continue
        try:
            addresses = {str(ipaddress.ip_address(host))}
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            except socket.gaierror as exc:
                raise ValueError(f"cannot resolve control-plane endpoint {text!r}: {exc}") from exc
            addresses = {str(ipaddress.ip_address(info[4][0])) for info in infos}
        out |= {Endpoint(a, port) for a in addresses}
    return sorted(out)


@dataclass(frozen=True)
class FirewallPolicy:
    interfaces: tuple[str, ...]  # the job bridges
    no_egress: tuple[str, ...] = ()  # bridges whose jobs reach nothing beyond their own network
    blocked: tuple[Endpoint, ...] = field(default_factory=tuple)  # control plane (metadata is always in)

    def merged(self, other: FirewallPolicy) -> FirewallPolicy:
        return FirewallPolicy(tuple(sorted(set(self.interfaces) | set(other.interfaces))),
                              tuple(sorted(set(self.no_egress) | set(other.no_egress))),
                              tuple(sorted(set(self.blocked) | set(other.blocked))))

    def to_json(self) -> str:
        return json.dumps({"interfaces": self.interfaces, "no_egress": self.no_egress,
                           "blocked": [[e.address, e.port] for e in self.blocked]})

    @classmethod
    def from_json(cls, text: str) -> FirewallPolicy:
        d = json.loads(text)
        return cls(tuple(d["interfaces"]), tuple(d["no_egress"]), tuple(Endpoint(a, p) for a, p in d["blocked"]))


def _set(name: str, kind: str, elements: Iterable[str], interval: bool = False) -> str:
    items = sorted(set(elements))
    flags = " flags interval;" if interval else ""
    body = f" elements = {{ {', '.join(items)} }};" if items else ""
    return f"  set {name} {{ type {kind};{flags}{body} }}\n"


def render(policy: FirewallPolicy) -> str:
    """The nft script that replaces the table with exactly this policy (idempotent, atomic)."""
    if not policy.interfaces:
        raise ValueError("a firewall policy needs the job bridges' interface names")
    metadata = [Endpoint(a) for a in METADATA_ADDRESSES]
    whole = [e for e in policy.blocked if e.port is None]
    ports = [e for e in policy.blocked if e.port is not None]
    v4 = lambda es: [e for e in es if e.version == 4]  # noqa: E731
    v6 = lambda es: [e for e in es if e.version == 6]  # noqa: E731
    ifaces = ", ".join(json.dumps(i) for i in sorted(set(policy.interfaces)))
    out = [f"table inet {TABLE}\n", f"delete table inet {TABLE}\n", f"table inet {TABLE} {{\n",
           f"  set job_ifaces {{ type ifname; elements = {{ {ifaces} }}; }}\n",
           _set("metadata_v4", "ipv4_addr", [e.address for e in v4(metadata)]),
           _set("blocked_v4", "ipv4_addr", [e.address for e in v4(whole)], interval=True),
           _set("blocked_v6", "ipv6_addr", [e.address for e in v6(whole)], interval=True),
           _set("blocked_v4_port", "ipv4_addr . inet_service", [f"{e.address} . {e.port}" for e in v4(ports)]),
           _set("blocked_v6_port", "ipv6_addr . inet_service", [f"{e.address} . {e.port}" for e in v6(ports)]),
           *(f"  counter {c} {{ }}\n" for c in ("host", "metadata", "control_plane", "no_egress")),
           "  chain input {\n    type filter hook input priority filter - 10; policy accept;\n",
           f"    iifname @job_ifaces counter name host {REJECT}\n  }}\n",
           "  chain forward {\n    type filter hook forward priority filter - 10; policy accept;\n",
           f"    iifname @job_ifaces ip daddr @metadata_v4 counter name metadata {REJECT}\n",
           f"    iifname @job_ifaces ip daddr @blocked_v4 counter name control_plane {REJECT}\n",
           f"    iifname @job_ifaces ip6 daddr @blocked_v6 counter name control_plane {REJECT}\n",
           f"    iifname @job_ifaces ip daddr . th dport @blocked_v4_port counter name control_plane {REJECT}\n",
           f"    iifname @job_ifaces ip6 daddr . th dport @blocked_v6_port counter name control_plane {REJECT}\n"]
    for iface in sorted(set(policy.no_egress)):
        name = json.dumps(iface)
        out.append(f"    iifname {name} oifname != {name} counter name no_egress {REJECT}\n")
    out.append("  }\n}\n")
    return "".join(out)


def _netns_id() -> str:
    """Rules are per network namespace: so are the holders."""
    link = os.readlink("/proc/self/ns/net")  # "net:[4026531840]"
    return link.split("[", 1)[1].rstrip("]")


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks since boot


class JobFirewall:
    def __init__(self, policy: FirewallPolicy, state_root: Path = DEFAULT_STATE_ROOT, nft: str | None = None) -> None:
        self.policy = policy
        self.dir = state_root / _netns_id()
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        pid = os.getpid()
        self.holder = self.dir / "holders" / f"{pid}-{_start_time(pid)}-{uuid.uuid4().hex[:8]}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        (self.dir / "holders").mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def install(self) -> None:
        """Register this holder and apply the union of every live holder's policy."""
        with self._locked():
            tmp = self.holder.with_suffix(".tmp")
            tmp.write_text(self.policy.to_json())
            tmp.replace(self.holder)
            self._apply(self._live_policy())

    def release(self) -> bool:
        """Unregister; the table shrinks to the other holders' policies, or goes with the last one.
        Returns True when this was the last holder (the job networks can go too)."""
        with self._locked():
            self.holder.unlink(missing_ok=True)
            live = self._live_policy()
            if live is None:
                self._delete()
                return True
            self._apply(live)
            return False

    def _live_policy(self) -> FirewallPolicy | None:
        merged: FirewallPolicy | None = None
        for path in sorted((self.dir / "holders").glob("*.json")):
            pid, started = path.name.split("-")[:2]
            if _start_time(int(pid)) != started:  # the process is gone (or its pid was reused)
                path.unlink(missing_ok=True)
                continue
            try:
                policy = FirewallPolicy.from_json(path.read_text())
            except (OSError, ValueError, KeyError):
                continue
            merged = policy if merged is None else merged.merged(policy)
        return merged

    def _apply(self, policy: FirewallPolicy | None) -> None:
        if policy is None:
            return
        self._nft(["-f", "-"], render(policy))

    def _delete(self) -> None:
        self._nft(["-f", "-"], f"table inet {TABLE}\ndelete table inet {TABLE}\n")

    def _nft(self, args: list[str], script: str) -> None:
        try:
            proc = subprocess.run([self.nft, *args], input=script, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FirewallError(f"cannot run {self.nft}: {exc} (install nftables; the worker runs as root)") from exc
        if proc.returncode != 0:
            raise FirewallError(f"nft refused the job firewall: {proc.stderr.strip()}")

    def counters(self) -> dict[str, int]:
        """Packets rejected so far, per named counter (empty when the table is absent)."""
        proc = subprocess.run([self.nft, "-j", "list", "counters", "table", "inet", TABLE],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return {}
        out = {}
        for item in json.loads(proc.stdout).get("nftables", []):
            counter = item.get("counter")
            if counter:
                out[counter["name"]] = int(counter["packets"])
        return out


def sweep(state_root: Path = DEFAULT_STATE_ROOT) -> bool:
    """Drop holders whose process is gone; delete the table if none is left (for `squall down`).
    Returns True when the table is gone."""
    firewall = JobFirewall(FirewallPolicy(interfaces=()), state_root)
    if not (firewall.dir / "holders").is_dir():
        return True
    with firewall._locked():
        if firewall._live_policy() is not None:
            return False
        firewall._delete()
        return True
