"""The autoscaling decision (pure): how many instances to request per pool, which idle ones to delete.

Hail's pool autoscaler (`Pool.create_instances`), pool by pool:
- demand: the cores of the ready jobs the scheduler would reach within the pool's scheduling
  window (`events.core.lookahead`: Hail's 150 s look-ahead over each user's fair share) is first
  served by free cores on active instances and by instances still booting; the rest needs
  ceil(rest / worker cores) new workers;
- standing workers: a pool below `min_instances` live instances gets standing workers of
  `standing_worker_cores` cores (Hail: smaller, cheaper machines kept warm), each kept until idle
  for `standing_worker_idle_time_ms`;
- limits: new instances never take the pool past `max_live_instances` (pending + active) nor
  `max_instances` (every instance not yet deleted, deactivated ones included), nor more than
  `max_new_per_loop` per loop (GCE's request quota);
- shrinking: an instance idle past its idle time is deleted, never one with running attempts,
  never while the pool grows for demand; the minimum keeps idle instances no bigger than a
  standing worker (a bigger idle worker goes, and a standing one takes its place, as in Hail).

The driver supplies the demand, the instances, the clock and the names; this module only decides,
and says why (`PoolVerdict`), so the UI, the log and `why` can show the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from events.core.resources import MEMORY_PER_CORE_MIB, MIB, pool_name

DEFAULT_REGION = "us-central1"

# Why a pool got fewer new instances than its demand asked for (PoolVerdict.limited_by).
LIMIT_MAX_LIVE = "max_live_instances"
LIMIT_MAX_INSTANCES = "max_instances"
LIMIT_PER_LOOP = "max_new_per_loop"


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    """One pool of identical workers (Hail's `pools` table, defaults from its migrations 078/082)."""

    name: str
    worker_type: str
    preemptible: bool
    worker_cores: int = 16
    memory_per_core_bytes: int = MEMORY_PER_CORE_MIB["standard"] * MIB
    storage_gib: int = 375  # scratch disk per worker (one local SSD)
    min_instances: int = 0
    max_instances: int = 6250  # every instance not deleted yet, deactivated ones included
    max_live_instances: int | None = None  # pending + active; None: max_instances
    max_new_per_loop: int = 10
    idle_time_ms: int = 30_000
    standing_worker_cores: int | None = None  # None: worker_cores
    standing_worker_idle_time_ms: int = 7_200_000  # Hail's production default: 2 hours
    scheduling_window_ms: int = 150_000  # Hail's job_queue_scheduling_window_secs: ~a worker's boot time
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

    @property
    def standing_cores(self) -> int:
        return self.standing_worker_cores if self.standing_worker_cores is not None else self.worker_cores

    @property
    def standing_mcpu(self) -> int:
        return self.standing_cores * 1000

    @property
    def standing_memory_bytes(self) -> int:
        return self.standing_cores * self.memory_per_core_bytes

    @property
    def standing_machine_type(self) -> str:
        return f"{self.machine_family}-{self.worker_type}-{self.standing_cores}"

    @property
    def live_limit(self) -> int:
        return self.max_live_instances if self.max_live_instances is not None else self.max_instances

    def problems(self) -> list[str]:
        """What is wrong with this configuration (empty when it is usable): Hail's own checks."""
        out = []
        if self.worker_cores <= 0:
            out.append(f"worker_cores must be positive, not {self.worker_cores}")
        if self.standing_worker_cores is not None and not 0 < self.standing_worker_cores <= self.worker_cores:
            out.append(f"standing_worker_cores must be between 1 and worker_cores ({self.worker_cores}), "
                       f"not {self.standing_worker_cores}")
        if not 0 <= self.min_instances <= self.live_limit <= self.max_instances:
            out.append("need 0 <= min_instances <= max_live_instances <= max_instances, got "
                       f"{self.min_instances} <= {self.live_limit} <= {self.max_instances}")
        for name in ("max_new_per_loop", "idle_time_ms", "standing_worker_idle_time_ms"):
            if getattr(self, name) < 0:
                out.append(f"{name} must not be negative, not {getattr(self, name)}")
        if self.scheduling_window_ms < 1000:
            out.append(f"scheduling_window_ms must be at least 1000 (one scheduling pass), not "
                       f"{self.scheduling_window_ms}")
        return out


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
    """An instance as the autoscaler sees it. Pending = requested or booting, not yet active;
    inactive = deactivated but not deleted yet (it still counts against max_instances)."""

    name: str
    pool: str
    pending: bool
    free_mcpu: int
    running_attempts: int
    idle_since_ms: int | None  # when it last became empty; None while it runs attempts or boots
    cores_mcpu: int = 0  # its size; 0: the pool's worker size
    standing: bool = False  # requested as a standing worker
    inactive: bool = False


@dataclass(frozen=True, slots=True)
class PoolVerdict:
    """Why a pool got what it got this loop: the numbers the decision compared."""

    pool: str
    demand_mcpu: int  # ready cores inside the look-ahead window
    free_mcpu: int
    pending_mcpu: int
    live: int
    pending: int
    inactive: int
    for_demand: int  # new workers the demand needs before any limit
    requested: int  # new workers asked for (worker_cores each)
    standing_requested: int  # new standing workers asked for (standing_worker_cores each)
    deleted: int
    limited_by: str | None  # LIMIT_* when a limit cut the demand's or the minimum's instances


@dataclass(frozen=True, slots=True)
class AutoscaleDecision:
    requests: dict[str, int] = field(default_factory=dict)  # pool -> how many new workers for demand
    deletions: list[str] = field(default_factory=list)  # idle instance names, oldest idle first
    standing: dict[str, int] = field(default_factory=dict)  # pool -> how many new standing workers
    verdicts: dict[str, PoolVerdict] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """What the decision needs to know about one pool's instances."""

    live: int  # pending + active
    pending: int  # requested or booting
    free_mcpu: int  # free cores on active instances
    idle: Sequence[InstanceStatus]  # active instances without running attempts (deletion candidates)
    pending_mcpu: int | None = None  # cores on the way; None: pending × the pool's worker size
    inactive: int = 0  # deactivated, not deleted yet

    @classmethod
    def of(cls, instances: Iterable[InstanceStatus], worker_mcpu: int = 0) -> PoolSnapshot:
        count = pending = pending_mcpu = free = inactive = 0
        idle = []
        for instance in instances:
            if instance.inactive:
                inactive += 1
                continue
            count += 1
            if instance.pending:
                pending += 1
                pending_mcpu += instance.cores_mcpu or worker_mcpu
                continue
            free += instance.free_mcpu
            if instance.running_attempts == 0:
                idle.append(instance)
        return cls(live=count, pending=pending, free_mcpu=free, idle=idle, pending_mcpu=pending_mcpu,
                   inactive=inactive)


def decide(
    pools: Sequence[PoolConfig],
    demand_mcpu: Mapping[str, int],
    instances: Iterable[InstanceStatus],
    now_ms: int,
) -> AutoscaleDecision:
    """demand_mcpu: per pool, the cores of ready jobs inside the look-ahead window (`lookahead`)."""
    by_pool: dict[str, list[InstanceStatus]] = {pool.name: [] for pool in pools}
    for instance in instances:
        if instance.pool in by_pool:
            by_pool[instance.pool].append(instance)
    snapshots = {pool.name: PoolSnapshot.of(by_pool[pool.name], pool.worker_mcpu) for pool in pools}
    return decide_from_snapshots(pools, demand_mcpu, snapshots, now_ms)


def decide_from_snapshots(
    pools: Sequence[PoolConfig],
    demand_mcpu: Mapping[str, int],
    snapshots: Mapping[str, PoolSnapshot],
    now_ms: int,
) -> AutoscaleDecision:
    """`decide` over per-pool summaries, for callers that keep the counts themselves (the simulator)."""
    decision = AutoscaleDecision()
    for pool in pools:
        snapshot = snapshots[pool.name]
        demand = demand_mcpu.get(pool.name, 0)
        wanted, limit = instances_to_request(pool, demand, snapshot)
        deletions = [] if wanted else idle_instances_to_delete(pool, snapshot, now_ms)
        standing, standing_limit = standing_to_request(pool, snapshot, wanted, len(deletions))
        if wanted:
            decision.requests[pool.name] = wanted
        if standing:
            decision.standing[pool.name] = standing
        decision.deletions.extend(deletions)
        decision.verdicts[pool.name] = PoolVerdict(
            pool=pool.name, demand_mcpu=demand, free_mcpu=snapshot.free_mcpu, pending_mcpu=_pending_mcpu(pool, snapshot),
            live=snapshot.live, pending=snapshot.pending, inactive=snapshot.inactive,
            for_demand=instances_for_demand(pool, demand, snapshot), requested=wanted, standing_requested=standing,
            deleted=len(deletions), limited_by=limit or standing_limit)
    return decision


def _pending_mcpu(pool: PoolConfig, snapshot: PoolSnapshot) -> int:
    return snapshot.pending_mcpu if snapshot.pending_mcpu is not None else snapshot.pending * pool.worker_mcpu


def instances_for_demand(pool: PoolConfig, demand_mcpu: int, snapshot: PoolSnapshot) -> int:
    """Workers the demand needs beyond free and booting capacity, before any limit."""
    shortfall = demand_mcpu - snapshot.free_mcpu - _pending_mcpu(pool, snapshot)
    return -(-shortfall // pool.worker_mcpu) if shortfall > 0 else 0


def headroom(pool: PoolConfig, live: int, inactive: int) -> tuple[int, str | None]:
    """How many instances the pool may add now, and the limit that binds (None: neither)."""
    live_room = pool.live_limit - live
    total_room = pool.max_instances - live - inactive
    if total_room < live_room:
        return max(0, total_room), LIMIT_MAX_INSTANCES
    return max(0, live_room), LIMIT_MAX_LIVE


def capacity_limit_reached(pool: PoolConfig, live: int, inactive: int) -> str | None:
    """The limit (LIMIT_MAX_LIVE or LIMIT_MAX_INSTANCES) that stops the pool growing now, if any."""
    room, limit = headroom(pool, live, inactive)
    return limit if room == 0 else None


def instances_to_request(pool: PoolConfig, demand_mcpu: int, snapshot: PoolSnapshot) -> tuple[int, str | None]:
    """New workers for the demand the live and booting instances cannot absorb, within the limits;
    and the limit that cut it, if one did."""
    wanted = instances_for_demand(pool, demand_mcpu, snapshot)
    if wanted == 0:
        return 0, None
    room, room_limit = headroom(pool, snapshot.live, snapshot.inactive)
    granted = min(wanted, room, pool.max_new_per_loop)
    if granted == wanted:
        return granted, None
    return granted, room_limit if room <= pool.max_new_per_loop else LIMIT_PER_LOOP


def standing_to_request(pool: PoolConfig, snapshot: PoolSnapshot, requested: int, deleted: int) -> tuple[int, str | None]:
    """Standing workers to bring the pool back to `min_instances` live, after this loop's requests
    and deletions, within the limits."""
    live_after = snapshot.live + requested - deleted
    wanted = pool.min_instances - live_after
    if wanted <= 0:
        return 0, None
    room, room_limit = headroom(pool, live_after, snapshot.inactive + deleted)
    per_loop = pool.max_new_per_loop - requested
    granted = max(0, min(wanted, room, per_loop))
    if granted == wanted:
        return granted, None
    return granted, room_limit if room <= per_loop else LIMIT_PER_LOOP


def idle_instances_to_delete(pool: PoolConfig, snapshot: PoolSnapshot, now_ms: int) -> list[str]:
    """Instances idle past their idle time (a standing worker's own), longest idle first. The minimum
    keeps idle instances no bigger than a standing worker; bigger ones go whatever the minimum (a
    standing worker replaces them: `standing_to_request`)."""
    due = sorted(
        (i.idle_since_ms, i.name, i)
        for i in snapshot.idle
        if i.idle_since_ms is not None and not i.pending and i.running_attempts == 0
        and now_ms - i.idle_since_ms >= (pool.standing_worker_idle_time_ms if i.standing else pool.idle_time_ms)
    )
    bigger = [name for _, name, i in due if (i.cores_mcpu or pool.worker_mcpu) > pool.standing_mcpu]
    fit = [name for _, name, i in due if (i.cores_mcpu or pool.worker_mcpu) <= pool.standing_mcpu]
    deletable_fit = max(0, snapshot.live - len(bigger) - pool.min_instances)
    chosen = set(bigger) | set(fit[:deletable_fit])
    return [name for _, name, _ in due if name in chosen]
