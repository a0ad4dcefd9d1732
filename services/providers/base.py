"""InstanceProvider: how the autoscaler gets and gives back worker machines.

Adapters: `local` (worker agent processes on this machine) and `gce` (Compute Engine VMs). Both
are idempotent by instance name: creating a name that exists, or deleting one that is gone, is
not an error — the autoscaler may retry after a crash without knowing how far it got.
Both adapters and the tests' in-memory providers pass one contract suite,
tests/contract/test_instance_provider.py.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSpec:
    """One worker machine to create (what InstanceRequested records)."""

    name: str
    pool: str
    machine_type: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    region: str
    job_private_for: str | None = None
    zone: str | None = None  # the autoscaler's choice (events.core.zones); None: the provider picks
    standing: bool = False  # a standing worker (the autoscaler's business; providers may label it)


@dataclass(frozen=True, slots=True)
class ProviderInstance:
    """An instance as the provider reports it."""

    name: str
    provider_id: str  # what delete needs to find it again (pid, zone/name)
    status: str  # provider's word: running, provisioning, terminated, ...
    zone: str | None = None  # where it was created, when the provider knows


class ProviderError(Exception):
    """Base of provider failures; `retry_after_s` says when trying again makes sense."""

    retry_after_s: float = 30.0


class QuotaExceeded(ProviderError):
    """The project is out of quota (cpus, instances, or API rate): retry later, anywhere."""

    retry_after_s = 60.0


class ZoneExhausted(ProviderError):
    """The zone has no capacity for this machine type now: another zone may."""

    retry_after_s = 120.0


class ProviderUnavailable(ProviderError):
    """The provider's API failed transiently (5xx, timeouts): retry soon."""

    retry_after_s = 10.0


class InstanceProvider(Protocol):
    name: str

    def zones_for(self, region: str) -> list[str]:
        """The zones of the region this provider may create instances in (empty: it has no zones)."""
        ...

    async def create(self, spec: InstanceSpec) -> ProviderInstance:
        """Start creating the instance; returns once the provider accepted it (it may still boot)."""
        ...

    async def delete(self, name: str, provider_id: str | None = None) -> None:
        """Delete the instance; an instance that does not exist is already deleted."""
        ...

    async def list(self) -> list[ProviderInstance]:
        """Every instance of this cluster the provider knows, to reconcile with the log."""
        ...

    async def preempted(self) -> builtins.list[str]:
        """Names of this cluster's instances the provider preempted (its own word: a cloud's preemption
        record, never a guess from an instance that stopped answering). A name may be repeated on
        later calls; the autoscaler deactivates each live one once, with reason `preempted`."""
        ...

    async def heal(self) -> builtins.list[str]:
        """Restart the agents of instances whose agent died, as the machine's init would; returns
        the instances restarted. (local: done here; gce: each VM's startup script does it itself.)"""
        ...

    async def close(self) -> None: ...
