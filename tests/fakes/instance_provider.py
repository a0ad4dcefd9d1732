"""An in-memory InstanceProvider for the autoscaler's unit tests.

It passes the InstanceProvider contract (tests/contract/test_instance_provider.py) like the local
and GCE adapters: idempotent by name, zones it offers and refuses others, a full zone refuses with
ZoneExhausted, a preempted instance is gone and named by `preempted()`. Tests script the rest:
`fail_next` makes the next creates raise it, `status` sets what `list` reports for a name.
"""

from __future__ import annotations

import builtins

from services.providers.base import InstanceSpec, ProviderError, ProviderInstance, ZoneExhausted


class MemoryProvider:
    name = "memory"

    def __init__(self) -> None:
        self.instances: dict[str, InstanceSpec] = {}
        self.fail_next: list[Exception] = []
        self.deleted: list[str] = []
        self.status: dict[str, str] = {}  # name -> what list() reports (default running)
        self.preempted_names: set[str] = set()  # what preempted() reports
        self.zones: list[str] = []  # none: the autoscaler names no zone
        self.full_zones: set[str] = set()  # creates there are refused with ZoneExhausted

    def zones_for(self, region: str) -> list[str]:
        return list(self.zones)

    async def create(self, spec: InstanceSpec) -> ProviderInstance:
        if spec.name in self.instances:  # idempotent by name: a retry after a crash
            return self._reported(spec.name)
        if self.fail_next:
            raise self.fail_next.pop(0)
        if spec.zone is not None:
            if spec.zone not in self.zones:
                raise ProviderError(f"zone {spec.zone!r} is not one this provider offers: {self.zones}")
            if spec.zone in self.full_zones:
                raise ZoneExhausted(f"zone {spec.zone} is full")
        self.instances[spec.name] = spec
        return self._reported(spec.name)

    def preempt(self, name: str) -> None:
        """What a cloud does to a spot VM it reclaims: the instance is gone, and the preemption recorded."""
        self.instances.pop(name)
        self.preempted_names.add(name)

    async def delete(self, name: str, provider_id: str | None = None) -> None:
        self.instances.pop(name, None)
        self.deleted.append(name)

    def _reported(self, name: str) -> ProviderInstance:
        return ProviderInstance(name, f"mem/{name}", self.status.get(name, "running"), zone=self.instances[name].zone)

    async def list(self) -> builtins.list[ProviderInstance]:
        return [self._reported(n) for n in self.instances]

    async def heal(self) -> builtins.list[str]:
        return []

    async def preempted(self) -> builtins.list[str]:
        return sorted(self.preempted_names)

    async def close(self) -> None:
        pass
