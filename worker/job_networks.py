"""squall's own podman networks for jobs that ask for one (a job's `network`: none | private | public).

    public   NAT egress to the internet; squall-job-public, bridge sqj-pub0, 10.213.7.128/26 by default
    private  no egress; squall-job-private (internal), bridge sqj-priv0, 10.213.7.192/26 by default
Both without DNS (aardvark-dns would listen on the gateway, i.e. on the host) and without IPv6.
Fixed bridge names let the job firewall (worker/job_firewall.py) match them; the subnets are
settings (`python -m worker --job-public-subnet/--job-private-subnet`) so an operator can keep them
clear of addresses used elsewhere. A network that exists with other settings is an error that says
how to fix it, never silently changed.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from worker.job_firewall import Endpoint, FirewallPolicy

LABEL_ROLE = "squall.role"


class JobNetworkError(RuntimeError):
    """A job network exists with other settings than squall's, or could not be created."""


@dataclass(frozen=True)
class JobNetwork:
    name: str
    subnet: str
    interface: str  # at most 15 characters (a Linux interface name)
    internal: bool

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    def create_body(self) -> dict[str, Any]:
        """libpod `POST /networks/create`."""
        return {"name": self.name, "driver": "bridge", "network_interface": self.interface,
                "subnets": [{"subnet": self.subnet, "gateway": self.gateway}], "internal": self.internal,
                "dns_enabled": False, "ipv6_enabled": False, "labels": {LABEL_ROLE: "job-network"}}

    def mismatch(self, inspected: dict[str, Any]) -> str | None:
        """What differs between an existing network (libpod inspect) and this definition."""
        subnets = [s.get("subnet") for s in inspected.get("subnets") or []]
        found = {"subnet": subnets[0] if len(subnets) == 1 else subnets,
                 "interface": inspected.get("network_interface"), "internal": bool(inspected.get("internal")),
                 "dns": bool(inspected.get("dns_enabled"))}
        wanted = {"subnet": self.subnet, "interface": self.interface, "internal": self.internal, "dns": False}
        diffs = [f"{k} {found[k]!r} (want {wanted[k]!r})" for k in wanted if found[k] != wanted[k]]
        return ", ".join(diffs) or None


@dataclass(frozen=True)
class JobNetworks:
    public: JobNetwork = JobNetwork("squall-job-public", "10.213.7.128/26", "sqj-pub0", internal=False)
    private: JobNetwork = JobNetwork("squall-job-private", "10.213.7.192/26", "sqj-priv0", internal=True)
    blocked: tuple[Endpoint, ...] = field(default_factory=tuple)  # control-plane endpoints

    @classmethod
    def with_subnets(cls, public: str, private: str, blocked: tuple[Endpoint, ...] = ()) -> JobNetworks:
        for s in (public, private):
            ipaddress.ip_network(s)  # ValueError names the bad one
        d = cls()
        return cls(JobNetwork(d.public.name, public, d.public.interface, internal=False),
                   JobNetwork(d.private.name, private, d.private.interface, internal=True), blocked)

    def by_kind(self, kind: str) -> JobNetwork:
        if kind == "public":
            return self.public
        if kind == "private":
            return self.private
        raise ValueError(f"network must be none, private or public, not {kind!r}")

    def all(self) -> tuple[JobNetwork, JobNetwork]:
        return self.public, self.private

    def firewall_policy(self) -> FirewallPolicy:
        return FirewallPolicy(interfaces=(self.public.interface, self.private.interface),
                              no_egress=(self.private.interface,), blocked=self.blocked)


def ensure_network(client: Any, network: JobNetwork) -> None:
    """Create the network if absent; refuse one that exists with other settings. `client` is a
    podman-py PodmanClient (its `api` session speaks libpod)."""
    response = client.api.get(f"/networks/{network.name}/json")
    if response.status_code == 200:
        differs = network.mismatch(response.json())
        if differs:
            raise JobNetworkError(f"podman network {network.name} exists with other settings: {differs}; "
                                  f"remove it (`podman network rm {network.name}`) or configure these")
        return
    created = client.api.post("/networks/create", data=json.dumps(network.create_body()),
                              headers={"content-type": "application/json"})
    if created.status_code >= 300:
        if client.api.get(f"/networks/{network.name}/json").status_code == 200:
            return ensure_network(client, network)  # another agent created it first: check its settings
        raise JobNetworkError(f"creating podman network {network.name} failed: {created.text.strip()}")


def remove_network(client: Any, network: JobNetwork) -> bool:
    """Remove the network unless containers still use it; True if it is gone."""
    response = client.api.delete(f"/networks/{network.name}")
    return response.status_code in (200, 204, 404)
