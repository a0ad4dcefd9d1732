"""Simulated instances: capacity bookkeeping the scheduler and autoscaler read each cycle.

Instances are numbered in creation order and never reused, so an event that names an instance
(its boot, its preemption) is stale exactly when that instance is no longer in the state the
event expects. Collections are insertion-ordered dicts: iteration order is part of the
simulator's determinism.
"""

from __future__ import annotations

from collections.abc import Iterator

from events.core.autoscale import InstanceStatus, PoolConfig, PoolSnapshot
from events.core.matching import InstanceCapacity

PENDING, ACTIVE, DELETED = 0, 1, 2


class SimInstance:
    __slots__ = (
        "index", "name", "pool", "state", "free_mcpu", "free_memory_bytes", "free_storage_gib",
        "jobs", "idle_since_ms", "capacity_mcpu", "capacity_view", "status_view",
    )  # fmt: skip

    def __init__(self, index: int, pool: PoolConfig) -> None:
        self.index = index
        self.name = f"{pool.name}-{index:06d}"
        self.pool = pool.name
        self.state = PENDING
        self.capacity_mcpu = pool.worker_mcpu
        self.free_mcpu = pool.worker_mcpu
        self.free_memory_bytes = pool.worker_memory_bytes
        self.free_storage_gib = pool.storage_gib
        self.jobs: dict[int, None] = {}  # running job ids, in start order
        self.idle_since_ms: int | None = None
        # What the matcher and the autoscaler last saw, rebuilt only after the instance changes:
        # most instances are unchanged from one cycle to the next.
        self.capacity_view: InstanceCapacity | None = None
        self.status_view: InstanceStatus | None = None

    def changed(self) -> None:
        self.capacity_view = None
        self.status_view = None


class Fleet:
    def __init__(self, pools: tuple[PoolConfig, ...]) -> None:
        self.pools = {pool.name: pool for pool in pools}
        self.instances: list[SimInstance] = []
        self.by_name: dict[str, SimInstance] = {}
        self.live: dict[str, dict[int, SimInstance]] = {name: {} for name in self.pools}  # pending + active
        self.with_free: dict[str, dict[int, SimInstance]] = {
            name: {} for name in self.pools
        }  # active, free > 0
        self.idle: dict[str, dict[int, SimInstance]] = {name: {} for name in self.pools}  # active, no jobs
        self.pending: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.active_mcpu: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.used_mcpu: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.requested = 0
        self.deleted = 0

    def request(self, pool_name: str) -> SimInstance:
        instance = SimInstance(len(self.instances), self.pools[pool_name])
        self.instances.append(instance)
        self.by_name[instance.name] = instance
        self.live[pool_name][instance.index] = instance
        self.pending[pool_name] += 1
        self.requested += 1
        return instance

    def activate(self, instance: SimInstance, now_ms: int) -> None:
        instance.state = ACTIVE
        instance.idle_since_ms = now_ms
        instance.changed()
        self.pending[instance.pool] -= 1
        self.idle[instance.pool][instance.index] = instance
        self.with_free[instance.pool][instance.index] = instance
        self.active_mcpu[instance.pool] += instance.capacity_mcpu

    def delete(self, instance: SimInstance) -> list[int]:
        """Remove the instance; returns the jobs that were running on it (they lose their attempt)."""
        orphans = list(instance.jobs)
        if instance.state == PENDING:
            self.pending[instance.pool] -= 1
        if instance.state == ACTIVE:
            self.active_mcpu[instance.pool] -= instance.capacity_mcpu
            self.used_mcpu[instance.pool] -= instance.capacity_mcpu - instance.free_mcpu
        instance.state = DELETED
        instance.jobs.clear()
        instance.changed()
        self.live[instance.pool].pop(instance.index, None)
        self.with_free[instance.pool].pop(instance.index, None)
        self.idle[instance.pool].pop(instance.index, None)
        self.deleted += 1
        return orphans

    def start(self, instance: SimInstance, job: int, mcpu: int, memory_bytes: int, storage_gib: int) -> None:
        instance.free_mcpu -= mcpu
        instance.free_memory_bytes -= memory_bytes
        instance.free_storage_gib -= storage_gib
        if instance.free_mcpu < 0 or instance.free_memory_bytes < 0 or instance.free_storage_gib < 0:
            raise AssertionError(f"{instance.name} over-committed by the matcher")
        if not instance.jobs:
            del self.idle[instance.pool][instance.index]
        instance.jobs[job] = None
        instance.idle_since_ms = None
        instance.changed()
        self.used_mcpu[instance.pool] += mcpu
        if instance.free_mcpu == 0:
            self.with_free[instance.pool].pop(instance.index, None)

    def finish(
        self, instance: SimInstance, job: int, mcpu: int, memory_bytes: int, storage_gib: int, now_ms: int
    ) -> None:
        del instance.jobs[job]
        instance.changed()
        instance.free_mcpu += mcpu
        instance.free_memory_bytes += memory_bytes
        instance.free_storage_gib += storage_gib
        self.used_mcpu[instance.pool] -= mcpu
        self.with_free[instance.pool][instance.index] = instance
        if not instance.jobs:
            instance.idle_since_ms = now_ms
            self.idle[instance.pool][instance.index] = instance

    def free_capacity(self, pool_name: str, min_mcpu: int) -> Iterator[InstanceCapacity]:
        """What the matcher sees: active instances of the pool with at least `min_mcpu` free."""
        for instance in self.with_free[pool_name].values():
            if instance.free_mcpu < min_mcpu:
                continue
            view = instance.capacity_view
            if view is None:
                view = instance.capacity_view = InstanceCapacity(
                    name=instance.name,
                    pool=instance.pool,
                    region=self.pools[instance.pool].region,
                    free_mcpu=instance.free_mcpu,
                    free_memory_bytes=instance.free_memory_bytes,
                    free_storage_gib=instance.free_storage_gib,
                    preemptible=self.pools[instance.pool].preemptible,
                )
            yield view

    def free_mcpu(self, pool_name: str) -> int:
        return self.active_mcpu[pool_name] - self.used_mcpu[pool_name]

    def snapshot(self, pool_name: str) -> PoolSnapshot:
        """What the autoscaler needs, from running counts (same answer as PoolSnapshot.of(statuses))."""
        return PoolSnapshot(
            live=len(self.live[pool_name]),
            pending=self.pending[pool_name],
            free_mcpu=self.free_mcpu(pool_name),
            idle=[self._status(instance) for instance in self.idle[pool_name].values()],
        )

    def statuses(self, pool_name: str) -> Iterator[InstanceStatus]:
        """What the autoscaler sees of each live instance."""
        for instance in self.live[pool_name].values():
            yield self._status(instance)

    @staticmethod
    def _status(instance: SimInstance) -> InstanceStatus:
        view = instance.status_view
        if view is None:
            view = instance.status_view = InstanceStatus(
                name=instance.name,
                pool=instance.pool,
                pending=instance.state == PENDING,
                free_mcpu=instance.free_mcpu if instance.state == ACTIVE else 0,
                running_attempts=len(instance.jobs),
                idle_since_ms=instance.idle_since_ms,
            )
        return view
