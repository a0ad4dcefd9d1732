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
from events.core.selection import usable_mcpu

PENDING, ACTIVE, DELETED = 0, 1, 2
QUARTER_CORE_MCPU = 250


class SimInstance:
    __slots__ = (
        "index", "name", "pool", "state", "free_mcpu", "free_memory_bytes", "free_storage_gib",
        "jobs", "idle_since_ms", "capacity_mcpu", "capacity_view", "status_view", "standing",
    )  # fmt: skip

    def __init__(self, index: int, pool: PoolConfig, standing: bool = False) -> None:
        self.index = index
        self.name = f"{pool.name}-{index:06d}"
        self.pool = pool.name
        self.state = PENDING
        self.standing = standing  # a standing worker: the pool's standing size and idle time
        self.capacity_mcpu = pool.standing_mcpu if standing else pool.worker_mcpu
        self.free_mcpu = self.capacity_mcpu
        self.free_memory_bytes = pool.standing_memory_bytes if standing else pool.worker_memory_bytes
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
        # Active instances with free cores, bucketed by free quarter-cores (index 0 unused), so a cycle
        # touches only the instances that can hold its jobs, however many 10,000s are full.
        self.free_buckets: dict[str, list[dict[int, SimInstance]]] = {
            name: [{} for _ in range(pool.worker_cores * 4 + 1)] for name, pool in self.pools.items()
        }
        self.idle: dict[str, dict[int, SimInstance]] = {name: {} for name in self.pools}  # active, no jobs
        self.pending: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.pending_mcpu: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.active_mcpu: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.used_mcpu: dict[str, int] = dict.fromkeys(self.pools, 0)
        self.requested = 0
        self.deleted = 0

    def request(self, pool_name: str, standing: bool = False) -> SimInstance:
        instance = SimInstance(len(self.instances), self.pools[pool_name], standing)
        self.instances.append(instance)
        self.by_name[instance.name] = instance
        self.live[pool_name][instance.index] = instance
        self.pending[pool_name] += 1
        self.pending_mcpu[pool_name] += instance.capacity_mcpu
        self.requested += 1
        return instance

    def activate(self, instance: SimInstance, now_ms: int) -> None:
        instance.state = ACTIVE
        instance.idle_since_ms = now_ms
        instance.changed()
        self.pending[instance.pool] -= 1
        self.pending_mcpu[instance.pool] -= instance.capacity_mcpu
        self.idle[instance.pool][instance.index] = instance
        self._file(instance)
        self.active_mcpu[instance.pool] += instance.capacity_mcpu

    def delete(self, instance: SimInstance) -> list[int]:
        """Remove the instance; returns the jobs that were running on it (they lose their attempt)."""
        orphans = list(instance.jobs)
        if instance.state == ACTIVE:
            self._unfile(instance)
        if instance.state == PENDING:
            self.pending[instance.pool] -= 1
            self.pending_mcpu[instance.pool] -= instance.capacity_mcpu
        if instance.state == ACTIVE:
            self.active_mcpu[instance.pool] -= instance.capacity_mcpu
            self.used_mcpu[instance.pool] -= instance.capacity_mcpu - instance.free_mcpu
        instance.state = DELETED
        instance.jobs.clear()
        instance.changed()
        self.live[instance.pool].pop(instance.index, None)
        self.idle[instance.pool].pop(instance.index, None)
        self.deleted += 1
        return orphans

    def start(self, instance: SimInstance, job: int, mcpu: int, memory_bytes: int, storage_gib: int) -> None:
        self._unfile(instance)
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
        self._file(instance)

    def finish(
        self, instance: SimInstance, job: int, mcpu: int, memory_bytes: int, storage_gib: int, now_ms: int
    ) -> None:
        del instance.jobs[job]
        instance.changed()
        self._unfile(instance)
        instance.free_mcpu += mcpu
        instance.free_memory_bytes += memory_bytes
        instance.free_storage_gib += storage_gib
        self.used_mcpu[instance.pool] -= mcpu
        self._file(instance)
        if not instance.jobs:
            instance.idle_since_ms = now_ms
            self.idle[instance.pool][instance.index] = instance

    def _file(self, instance: SimInstance) -> None:
        if instance.free_mcpu >= QUARTER_CORE_MCPU:
            self.free_buckets[instance.pool][instance.free_mcpu // QUARTER_CORE_MCPU][instance.index] = (
                instance
            )

    def _unfile(self, instance: SimInstance) -> None:
        if instance.free_mcpu >= QUARTER_CORE_MCPU:
            del self.free_buckets[instance.pool][instance.free_mcpu // QUARTER_CORE_MCPU][instance.index]

    def usable_mcpu(self, pool_name: str, job_mcpu: int) -> int:
        """`selection.usable_mcpu` of the pool's active instances, from the buckets (free cores are
        whole quarter cores: every size is a power of two times 0.25 core)."""
        buckets = self.free_buckets[pool_name]
        return usable_mcpu(((q * QUARTER_CORE_MCPU, len(buckets[q])) for q in range(1, len(buckets)) if buckets[q]),
                           job_mcpu)

    def free_capacity(self, pool_name: str, min_mcpu: int, per_bucket: int) -> list[InstanceCapacity]:
        """What the matcher sees: active instances with at least `min_mcpu` free, at most `per_bucket`
        of each amount of free cores (n jobs never need more than n instances with the same room)."""
        offered = []
        region, preemptible = self.pools[pool_name].region, self.pools[pool_name].preemptible
        buckets = self.free_buckets[pool_name]
        for q in range(-(-min_mcpu // QUARTER_CORE_MCPU), len(buckets)):
            for n, instance in enumerate(buckets[q].values()):
                if n == per_bucket:
                    break
                view = instance.capacity_view
                if view is None:
                    view = instance.capacity_view = InstanceCapacity(
                        name=instance.name,
                        pool=instance.pool,
                        region=region,
                        free_mcpu=instance.free_mcpu,
                        free_memory_bytes=instance.free_memory_bytes,
                        free_storage_gib=instance.free_storage_gib,
                        preemptible=preemptible,
                    )
                offered.append(view)
        return offered

    def free_mcpu(self, pool_name: str) -> int:
        return self.active_mcpu[pool_name] - self.used_mcpu[pool_name]

    def snapshot(self, pool_name: str) -> PoolSnapshot:
        """What the autoscaler needs, from running counts (same answer as PoolSnapshot.of(statuses))."""
        return PoolSnapshot(
            live=len(self.live[pool_name]),
            pending=self.pending[pool_name],
            free_mcpu=self.free_mcpu(pool_name),
            idle=[self._status(instance) for instance in self.idle[pool_name].values()],
            pending_mcpu=self.pending_mcpu[pool_name],
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
                cores_mcpu=instance.capacity_mcpu,
                standing=instance.standing,
            )
        return view
