"""One scheduling pass over the projection: fair share, then best-fit matching. No I/O.

Inputs are the folded `SchedulingState`, the scheduler's own in-flight placements (appended but
not yet seen back in the log: their capacity is reserved, their jobs are not ready any more) and
the time. The output says what to place where; the caller draws attempt ids and appends events.

Which ready jobs go to the matcher, and in what order, is `events.core.selection.select_candidates`
(Hail's order), the same function the fleet simulator runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from events.core.autoscale import PoolConfig
from events.core.explain import Explanation
from events.core.matching import (
    Assignment,
    InstanceCapacity,
    JobPrivateRequest,
    ReadyJob,
    match,
)
from events.core.selection import MIN_JOBS_PER_USER, UserQueue, select_candidates, usable_mcpu
from projections.scheduling.model import (
    JOB_PRIVATE_POOL,
    Demand,
    InstanceEntry,
    InstanceState,
    JobEntry,
    JobKey,
)
from projections.scheduling.state import SchedulingState


@dataclass(frozen=True, slots=True)
class Reservation:
    """A placement this scheduler appended and has not yet seen come back through the log."""

    job: JobKey
    user: str
    pool: str
    instance_name: str | None  # None for a job-private request (no capacity taken yet)
    demand: Demand
    appended_at: int


@dataclass(frozen=True, slots=True)
class CreatingPlacement:
    """A Creating job whose job-private instance is now active: place the same attempt on it."""

    job: JobEntry
    instance: InstanceEntry


@dataclass(slots=True)
class Plan:
    assignments: list[Assignment] = field(default_factory=list)
    job_private_requests: list[JobPrivateRequest] = field(default_factory=list)
    creating_placements: list[CreatingPlacement] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    shares: dict[str, dict[str, int]] = field(default_factory=dict)  # pool -> user -> mCPU


def private_instance_name(key: JobKey, attempt_id: str) -> str:
    """The job-private instance of one attempt (lowercase, GCE-safe)."""
    return f"job-{key[0]}-{key[1]}-{attempt_id}".lower()


def plan_cycle(state: SchedulingState, reservations: Iterable[Reservation], now_ms: int,
               full_pools: Collection[str] | Mapping[str, tuple[str, int]] = frozenset(),
               pools: Sequence[PoolConfig] = ()) -> Plan:
    plan = Plan()
    reserved_jobs: set[JobKey] = set()
    reserved_on: dict[str, list[Demand]] = defaultdict(list)
    reserved_cores: dict[tuple[str, str], int] = defaultdict(int)  # (pool, user) -> mCPU in flight
    for r in reservations:
        reserved_jobs.add(r.job)
        if r.instance_name is not None:
            reserved_on[r.instance_name].append(r.demand)
            reserved_cores[(r.pool, r.user)] += r.demand.cores_mcpu

    instances = [_capacity(i, reserved_on.get(i.name, ())) for i in state.active_instances()]
    free_by_pool: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for cap in instances:
        free_by_pool[cap.pool].append((cap.free_mcpu, 1))

    ready_jobs: list[ReadyJob] = []
    for pool in sorted({p for p, _ in state.ready}):
        if pool == JOB_PRIVATE_POOL:
            ready_jobs.extend(_head_jobs(state, pool, reserved_jobs, now_ms))
            continue
        queues = {}
        for user, (running, ready) in state.user_cores(pool).items():
            in_flight = reserved_cores.get((pool, user), 0)
            queues[user] = UserQueue(running + in_flight, max(0, ready - in_flight),
                                     _schedulable(state, pool, user, reserved_jobs, now_ms))
        smallest = min((d.cores_mcpu for _, queue in state.ready_queues(pool) for d in queue.shapes), default=0)
        selection = select_candidates(queues, usable_mcpu(free_by_pool.get(pool, ()), smallest), _cores)
        plan.shares[pool] = selection.shares
        ready_jobs.extend(_ready_job(job) for job in selection.candidates)

    result = match(ready_jobs, instances, plan.shares, now_ms, full_pools=full_pools, pools=pools)
    plan.assignments = result.assignments
    plan.job_private_requests = result.job_private_requests
    plan.explanations = result.explanations
    plan.creating_placements = _creating_ready(state, reserved_jobs)
    return plan


def _head_jobs(state: SchedulingState, pool: str, reserved: set[JobKey], now_ms: int) -> list[ReadyJob]:
    """The job-private pool has no shares (each job gets a machine of its own): the head of every
    user's queue, MIN_JOBS_PER_USER jobs each."""
    return [_ready_job(job) for _, queue in state.ready_queues(pool)
            for job in islice(_eligible(state, queue, reserved, now_ms), MIN_JOBS_PER_USER)]


def _schedulable(state: SchedulingState, pool: str, user: str, reserved: set[JobKey],
                 now_ms: int) -> Iterator[JobEntry]:
    """One user's ready queue, head first, without jobs placed in flight or still in backoff."""
    return _eligible(state, state.ready.get((pool, user), ()), reserved, now_ms)


def _eligible(state: SchedulingState, queue: Iterable[JobKey], reserved: set[JobKey],
              now_ms: int) -> Iterator[JobEntry]:
    jobs = state.jobs
    for key in queue:
        job = jobs[key]
        if key not in reserved and (job.not_before is None or job.not_before <= now_ms):
            yield job


def _cores(job: JobEntry) -> int:
    return job.demand.cores_mcpu


def _ready_job(job: JobEntry) -> ReadyJob:
    return ReadyJob(batch_id=job.key[0], job_id=job.key[1], user=job.user, pool=job.pool,
                    cores_mcpu=job.demand.cores_mcpu, memory_bytes=job.demand.memory_bytes,
                    storage_gib=job.demand.storage_gib, preemptible=job.preemptible, regions=job.regions,
                    machine_type=job.machine_type, not_before=job.not_before)


def _capacity(instance: InstanceEntry, reserved: Iterable[Demand]) -> InstanceCapacity:
    cores, memory, storage = instance.free_cores_mcpu, instance.free_memory_bytes, instance.free_storage_gib
    for d in reserved:
        cores, memory, storage = cores - d.cores_mcpu, memory - d.memory_bytes, storage - d.storage_gib
    return InstanceCapacity(name=instance.name, pool=instance.pool, region=instance.region, free_mcpu=cores,
                            free_memory_bytes=memory, free_storage_gib=storage, preemptible=instance.preemptible,
                            active=instance.state is InstanceState.ACTIVE)


def _creating_ready(state: SchedulingState, reserved: set[JobKey]) -> list[CreatingPlacement]:
    out = []
    for key in state.creating:
        job = state.jobs[key]
        if key in reserved or job.attempt_id is None:
            continue
        instance = state.instances.get(private_instance_name(job.key, job.attempt_id))
        if instance is not None and instance.state is InstanceState.ACTIVE and not instance.attempts:
            out.append(CreatingPlacement(job, instance))
    return out
