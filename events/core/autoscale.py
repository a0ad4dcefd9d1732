"""The autoscaling decision (pure): how many instances to request per pool, which idle ones to delete.

Hail's pool autoscaler (`Pool.create_instances`): the ready demand of the next scheduling window
(2.5 minutes, about a worker's start-up time) is first served by free cores on live instances
and by instances still booting; the rest needs ceil(rest / worker cores) new instances, capped
by the pool's maximum and by a per-loop limit (GCE's request quota). Pools are topped up to
their minimum. An instance idle for longer than the pool's idle time is deleted, unless it is
needed to keep the minimum; an instance with running attempts is never deleted.

The driver supplies the demand (from its ready queue), the instances (from the instance
projection), the clock and the instance names; this module only decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from events.core.resources import MEMORY_PER_CORE_MIB, MIB, pool_name

DEFAULT_REGION = "us-central1"


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    """One pool of identical workers (Hail's `pools` table, defaults from its migration 078)."""

    name: str
    worker_type: str
    preemptible: bool
    worker_cores: int = 16
    memory_per_core_bytes: int = MEMORY_PER_CORE_MIB["standard"] * MIB
    storage_gib: int = 375  # scratch disk per worker (one local SSD)
    min_instances: int = 0
    max_instances: int = 6250
    max_new_per_loop: int = 10
    idle_time_ms: int = 30_000
    region: str = DEFAULT_REGION
    machine_family: str = "n1"

    @property
    def worker_mcpu(self) -> int:
        return self.worker_cores * 1000

    @property
    def worker_memory_bytes(self) -> int:
        return self.worker_cores * self.memory_per_core_bytes

    @property
    def machine_type(self) -> str:
        return f"{self.machine_family}-{self.worker_type}-{self.worker_cores}"


def default_pools(region: str = DEFAULT_REGION, max_instances: int = 6250) -> tuple[PoolConfig, ...]:
    """standard, highmem, highcpu (preemptible) and their -np (not preemptible) twins."""
    return tuple(
        PoolConfig(
            name=pool_name(worker_type, preemptible),
            worker_type=worker_type,
            preemptible=preemptible,
            memory_per_core_bytes=MEMORY_PER_CORE_MIB[worker_type] * MIB,
            region=region,
            max_instances=max_instances,
        )
        for preemptible in (True, False)
        for worker_type in ("standard", "highmem", "highcpu")
    )


DEFAULT_POOLS = default_pools()


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStatus:
    """A live instance as the autoscaler sees it. Pending = requested or booting, not yet active."""

    name: str
    pool: str
    pending: bool
    free_mcpu: int
    running_attempts: int
    idle_since_ms: int | None  # when it last became empty; None while it runs attempts or boots


@dataclass(frozen=True, slots=True)
class AutoscaleDecision:
    requests: dict[str, int] = field(default_factory=dict)  # pool -> how many new instances
    deletions: list[str] = field(default_factory=list)  # idle instance names, oldest idle first


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """What the decision needs to know about one pool's live instances."""

    live: int  # pending + active
    pending: int  # requested or booting
    free_mcpu: int  # free cores on active instances
    idle: Sequence[InstanceStatus]  # active instances without running attempts (deletion candidates)

    @classmethod
    def of(cls, live: Iterable[InstanceStatus]) -> PoolSnapshot:
        count = pending = free = 0
        idle = []
        for instance in live:
            count += 1
            if instance.pending:
                pending += 1
                continue
            free += instance.free_mcpu
            if instance.running_attempts == 0:
                idle.append(instance)
        return cls(live=count, pending=pending, free_mcpu=free, idle=idle)


def decide(
    pools: Sequence[PoolConfig],
    ready_mcpu: Mapping[str, int],
    instances: Iterable[InstanceStatus],
    now_ms: int,
) -> AutoscaleDecision:
    """ready_mcpu: per pool, the cores of ready jobs inside the look-ahead window (Hail: 150 s of shares)."""
    by_pool: dict[str, list[InstanceStatus]] = {pool.name: [] for pool in pools}
    for instance in instances:
        if instance.pool in by_pool:
            by_pool[instance.pool].append(instance)
    snapshots = {pool.name: PoolSnapshot.of(by_pool[pool.name]) for pool in pools}
    return decide_from_snapshots(pools, ready_mcpu, snapshots, now_ms)


def decide_from_snapshots(
    pools: Sequence[PoolConfig],
    ready_mcpu: Mapping[str, int],
    snapshots: Mapping[str, PoolSnapshot],
    now_ms: int,
) -> AutoscaleDecision:
    """`decide` over per-pool summaries, for callers that keep the counts themselves (the simulator)."""
    decision = AutoscaleDecision()
    for pool in pools:
        snapshot = snapshots[pool.name]
        wanted = instances_to_request(pool, ready_mcpu.get(pool.name, 0), snapshot)
        if wanted:
            decision.requests[pool.name] = wanted
            continue  # never delete while growing: an idle instance is about to get work
        decision.deletions.extend(idle_instances_to_delete(pool, snapshot, now_ms))
    return decision


def instances_to_request(pool: PoolConfig, ready_mcpu: int, snapshot: PoolSnapshot) -> int:
    """New instances for the demand the live and booting instances cannot absorb, within the limits."""
    shortfall = ready_mcpu - snapshot.free_mcpu - snapshot.pending * pool.worker_mcpu
    for_demand = -(-shortfall // pool.worker_mcpu) if shortfall > 0 else 0
    for_minimum = pool.min_instances - snapshot.live
    headroom = pool.max_instances - snapshot.live
    return max(0, min(max(for_demand, for_minimum), headroom, pool.max_new_per_loop))


def idle_instances_to_delete(pool: PoolConfig, snapshot: PoolSnapshot, now_ms: int) -> list[str]:
    """Instances idle past the pool's idle time, longest idle first, keeping `min_instances` live."""
    idle = sorted(
        (i.idle_since_ms, i.name)
        for i in snapshot.idle
        if i.idle_since_ms is not None and now_ms - i.idle_since_ms >= pool.idle_time_ms
    )
    deletable = max(0, snapshot.live - pool.min_instances)
    return [name for _, name in idle[:deletable]]
