"""One scheduling pass over the projection: fair share, then best-fit matching. No I/O.

Inputs are the folded `SchedulingState`, the scheduler's own in-flight placements (appended but
not yet seen back in the log: their capacity is reserved, their jobs are not ready any more) and
the time. The output says what to place where; the caller draws attempt ids and appends events.

Order follows Hail (batch/batch/driver/instance_collection/pool.py): per pool, each user's share comes from water-filling over running and
ready cores; users are taken largest allocation first, each from the head of their ready queue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from events.core.explain import Explanation
from events.core.fairshare import UserDemand, allocate
from events.core.matching import (
    Assignment,
    InstanceCapacity,
    JobPrivateRequest,
    ReadyJob,
    match,
)
from projections.scheduling.model import (
    JOB_PRIVATE_POOL,
    Demand,
    InstanceEntry,
    InstanceState,
    JobEntry,
    JobKey,
)
from projections.scheduling.state import SchedulingState

MIN_JOBS_PER_USER = 20  # Hail looks at no fewer than 20 jobs of a user per pass
MAX_JOBS_PER_USER = 5_000  # keeps one pass short when a queue is huge


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
               full_pools: Collection[str] | Mapping[str, tuple[str, int]] = frozenset()) -> Plan:
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
    free_by_pool: dict[str, int] = defaultdict(int)
    for cap in instances:
        free_by_pool[cap.pool] += max(0, cap.free_mcpu)

    ready_jobs: list[ReadyJob] = []
    for pool in sorted({p for p, _ in state.ready}):
        if pool == JOB_PRIVATE_POOL:
            ready_jobs.extend(_head_jobs(state, pool, None, reserved_jobs, now_ms))
            continue
        demands = {}
        for user, (running, ready) in state.user_cores(pool).items():
            in_flight = reserved_cores.get((pool, user), 0)
            demands[user] = UserDemand(running_mcpu=running + in_flight, ready_mcpu=max(0, ready - in_flight))
        shares = allocate(demands, free_by_pool.get(pool, 0))
        plan.shares[pool] = shares
        for user in sorted(shares, key=lambda u: (-shares[u], u)):
            if demands[user].ready_mcpu > 0:
                ready_jobs.extend(_head_jobs(state, pool, user, reserved_jobs, now_ms, shares[user]))

    result = match(ready_jobs, instances, plan.shares, now_ms, full_pools=full_pools)
    plan.assignments = result.assignments
    plan.job_private_requests = result.job_private_requests
    plan.explanations = result.explanations
    plan.creating_placements = _creating_ready(state, reserved_jobs)
    return plan


def _head_jobs(state: SchedulingState, pool: str, user: str | None, reserved: set[JobKey], now_ms: int,
               share_mcpu: int = 0) -> list[ReadyJob]:
    """The front of one user's queue (all users for job-private): the jobs that fit the share, plus
    the next one (so the matcher can say why it waits), and at least MIN_JOBS_PER_USER."""
    out: list[ReadyJob] = []
    queues = [(user, state.ready[(pool, user)])] if user is not None else list(state.ready_queues(pool))
    jobs = state.jobs
    for _, queue in queues:
        budget, taken = share_mcpu, 0
        for key in queue:
            job = jobs[key]
            if key in reserved or (job.not_before is not None and job.not_before > now_ms):
                continue
            out.append(_ready_job(job))
            taken += 1
            budget -= job.demand.cores_mcpu
            if taken >= MAX_JOBS_PER_USER or (budget < 0 and taken >= MIN_JOBS_PER_USER):
                break
    return out


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
