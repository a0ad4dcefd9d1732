"""Matching: place ready jobs (in fair-share order) on instances with free resources, best fit.

Best fit is Hail's rule: among the instances a job may use, the one with the fewest free cores
that still holds the job (then its memory and storage must fit too). Nothing is ever
over-committed: a placement subtracts the job's cpu, memory and storage from the instance
before the next job is considered.

Speed (a cycle may see 10,000s of ready jobs): instances are grouped by (pool, region) and, in
each group, bucketed by free quarter-cores, so finding the best fit scans at most
`worker_cores × 4` small buckets instead of every instance. Within a cycle capacity only
shrinks, so a job shape that found no instance is remembered and later jobs of the same shape
are explained without searching again. Buckets are insertion-ordered dicts, never sets, so the
result does not depend on string hashing: the same input always gives the same placements.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from events.core.autoscale import PoolConfig
from events.core.explain import Explanation, Reason
from events.core.pool_fit import misfit_in_pool, region_misfit_in_pool

QUARTER_CORE_MCPU = 250
DEFAULT_JOB_PRIVATE_LIMIT = 300  # Hail: at most 300 job-private creations per pass (GCE quota)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyJob:
    """A schedulable job as the scheduler's ready queue holds it (resources already resolved)."""

    batch_id: int
    job_id: int
    user: str
    pool: str  # resources.pool_name(worker_type, preemptible)
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int = 0
    preemptible: bool = True
    regions: tuple[str, ...] | None = None  # None: any region
    machine_type: str | None = None  # set: a job-private instance, never placed on a pool instance
    not_before: int | None = None  # backoff after a system failure, ms since the epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceCapacity:
    """What an instance can still take: its capacity minus the attempts already placed on it."""

    name: str
    pool: str
    region: str
    free_mcpu: int
    free_memory_bytes: int
    free_storage_gib: int
    preemptible: bool = True
    active: bool = True


@dataclass(frozen=True, slots=True)
class Assignment:
    batch_id: int
    job_id: int
    user: str
    instance_name: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int


@dataclass(frozen=True, slots=True)
class JobPrivateRequest:
    """A job with a machine_type needs its own instance; the autoscaler creates it."""

    batch_id: int
    job_id: int
    user: str
    machine_type: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    regions: tuple[str, ...] | None


@dataclass(slots=True)
class MatchResult:
    assignments: list[Assignment] = field(default_factory=list)
    job_private_requests: list[JobPrivateRequest] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)


class _Slot:
    """An instance's remaining capacity during one cycle."""

    __slots__ = ("name", "free_mcpu", "free_memory_bytes", "free_storage_gib", "bucket")

    def __init__(self, instance: InstanceCapacity) -> None:
        self.name = instance.name
        self.free_mcpu = instance.free_mcpu
        self.free_memory_bytes = instance.free_memory_bytes
        self.free_storage_gib = instance.free_storage_gib
        self.bucket = max(0, instance.free_mcpu) // QUARTER_CORE_MCPU


class _Group:
    """Instances of one (pool, region, preemptible), bucketed by free quarter-cores."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: list[dict[str, _Slot]] = []

    def add(self, slot: _Slot) -> None:
        while len(self.buckets) <= slot.bucket:
            self.buckets.append({})
        self.buckets[slot.bucket][slot.name] = slot

    def best_fit(self, cores_mcpu: int, memory_bytes: int, storage_gib: int) -> _Slot | None:
        buckets = self.buckets
        for index in range(-(-cores_mcpu // QUARTER_CORE_MCPU), len(buckets)):
            bucket = buckets[index]
            if bucket:
                for slot in bucket.values():
                    if (
                        slot.free_mcpu >= cores_mcpu
                        and slot.free_memory_bytes >= memory_bytes
                        and slot.free_storage_gib >= storage_gib
                    ):
                        return slot
        return None

    def take(self, slot: _Slot, cores_mcpu: int, memory_bytes: int, storage_gib: int) -> None:
        del self.buckets[slot.bucket][slot.name]
        slot.free_mcpu -= cores_mcpu
        slot.free_memory_bytes -= memory_bytes
        slot.free_storage_gib -= storage_gib
        slot.bucket = slot.free_mcpu // QUARTER_CORE_MCPU
        self.buckets[slot.bucket][slot.name] = slot


def match(
    ready_jobs: Iterable[ReadyJob],
    instances: Iterable[InstanceCapacity],
    shares: Mapping[str, Mapping[str, int]] | None,
    now_ms: int,
    *,
    full_pools: Collection[str] = (),
    job_private_limit: int = DEFAULT_JOB_PRIVATE_LIMIT,
    pools: Sequence[PoolConfig] = (),
) -> MatchResult:
    """Place `ready_jobs` (already in fair-share order) on `instances`.

    shares: pool → user → mCPU the user may start in this cycle (from `fairshare.allocate`). A pool
    absent from `shares` (or shares=None) is not limited; a user absent from a listed pool gets 0.
    full_pools: pools that cannot grow (at max instances), to explain waiting jobs accurately; a
    mapping pool -> (limit, its value), e.g. ("max_live_instances", 4), also names the limit.
    pools: the configured pools; a job no worker of its pool can hold is explained as such
    (`no_pool_fits`), not as waiting for capacity the autoscaler will never add.
    Every ready job ends up in exactly one of assignments, job_private_requests, explanations.
    """
    groups: dict[str, list[tuple[str, bool, _Group]]] = {}  # pool -> [(region, preemptible, group)]
    group_index: dict[tuple[str, str, bool], _Group] = {}
    for instance in instances:
        if not instance.active:
            continue
        key = (instance.pool, instance.region, instance.preemptible)
        group = group_index.get(key)
        if group is None:
            group = group_index[key] = _Group()
            groups.setdefault(instance.pool, []).append((instance.region, instance.preemptible, group))
        group.add(_Slot(instance))
    # A preemptible job may use any instance of its pool; a non-preemptible job only non-preemptible ones.
    candidates: dict[tuple[str, tuple[str, ...] | None, bool], list[_Group]] = {}

    remaining: dict[tuple[str, str], int] = {}
    stopped_users: set[tuple[str, str]] = set()
    placed_users: set[tuple[str, str]] = set()
    failed_shapes: set[tuple[object, ...]] = set()
    no_capacity_reasons: dict[tuple[str, tuple[str, ...] | None, bool], Reason] = {}
    misfits: dict[tuple[object, ...], str | None] = {}  # shape -> why no worker of its pool holds it
    result = MatchResult()
    assignments, explanations = result.assignments, result.explanations
    job_private_left = job_private_limit
    over_share: list[tuple[int, ReadyJob]] = []  # (index in explanations, job) cut by its user's share

    for job in ready_jobs:
        if job.not_before is not None and job.not_before > now_ms:
            explanations.append(_explain(job, Reason.BACKOFF, not_before_ms=job.not_before))
            continue
        if job.machine_type is not None:
            if job_private_left > 0:
                job_private_left -= 1
                result.job_private_requests.append(_job_private_request(job))
            else:
                explanations.append(
                    _explain(
                        job, Reason.JOB_PRIVATE_LIMIT, limit=job_private_limit, machine_type=job.machine_type
                    )
                )
            continue

        user_key = (job.pool, job.user)
        if shares is not None and job.pool in shares:
            left = remaining.get(user_key)
            if left is None:
                left = remaining[user_key] = shares[job.pool].get(job.user, 0)
            # A user whose next job would exceed its share stops for this cycle (Hail), so its big jobs
            # keep their place. Exception: a user with a positive share that has placed nothing yet takes
            # one job even if the share is smaller than that job; otherwise a share split finer than a job
            # (1 free core, 3 users) would leave cores idle until enough accumulate.
            over = job.cores_mcpu > left and (left <= 0 or user_key in placed_users)
            if user_key in stopped_users or over:
                stopped_users.add(user_key)
                over_share.append((len(explanations), job))
                explanations.append(
                    _explain(
                        job,
                        Reason.OVER_FAIR_SHARE,
                        user=job.user,
                        pool=job.pool,
                        share_mcpu=shares[job.pool].get(job.user, 0),
                    )
                )
                continue
        else:
            left = None

        scope_key = (job.pool, job.regions, job.preemptible)
        shape = (scope_key, job.cores_mcpu, job.memory_bytes, job.storage_gib)
        slot = None
        if shape not in failed_shapes:
            scope = candidates.get(scope_key)
            if scope is None:
                scope = candidates[scope_key] = _groups_for(groups.get(job.pool, ()), job)
            slot_group = None
            for group in scope:
                found = group.best_fit(job.cores_mcpu, job.memory_bytes, job.storage_gib)
                if found is not None and (slot is None or found.free_mcpu < slot.free_mcpu):
                    slot, slot_group = found, group
            if slot is None:
                failed_shapes.add(shape)
            else:
                slot_group.take(slot, job.cores_mcpu, job.memory_bytes, job.storage_gib)  # type: ignore[union-attr]
        if slot is None:
            problem = misfits.get(shape, "") if pools else None
            if problem == "":
                problem = misfits[shape] = (
                    misfit_in_pool(job.cores_mcpu, job.memory_bytes, job.storage_gib, job.pool, pools)
                    or region_misfit_in_pool(job.regions, job.pool, pools))
            if problem is not None:
                explanations.append(_explain(job, Reason.NO_POOL_FITS, misfit=problem))
                continue
            reason = no_capacity_reasons.get(scope_key)
            if reason is None:
                reason = no_capacity_reasons[scope_key] = _no_capacity_reason(job, groups, full_pools)
            limit = full_pools.get(job.pool) if reason is Reason.POOL_AT_MAX and isinstance(full_pools, Mapping) else None
            explanations.append(
                _explain(
                    job,
                    reason,
                    pool=job.pool,
                    regions=job.regions,
                    cores_mcpu=job.cores_mcpu,
                    memory_bytes=job.memory_bytes,
                    storage_gib=job.storage_gib,
                    **({"limit": limit[0], "limit_value": limit[1]} if limit else {}),
                )
            )
            continue
        if left is not None:
            remaining[user_key] = left - job.cores_mcpu
            placed_users.add(user_key)
        assignments.append(
            Assignment(
                job.batch_id,
                job.job_id,
                job.user,
                slot.name,
                job.cores_mcpu,
                job.memory_bytes,
                job.storage_gib,
            )
        )
    # A job cut by its share that no instance could hold now anyway waits for capacity, not for
    # other users: say so (and which limit stops the pool growing), as the user can act on that.
    fits: dict[tuple[object, ...], bool] = {}
    for index, job in over_share:
        scope_key = (job.pool, job.regions, job.preemptible)
        shape = (scope_key, job.cores_mcpu, job.memory_bytes, job.storage_gib)
        if shape not in fits:
            fits[shape] = any(group.best_fit(job.cores_mcpu, job.memory_bytes, job.storage_gib) is not None
                              for group in _groups_for(groups.get(job.pool, ()), job))
        if not fits[shape]:
            reason = _no_capacity_reason(job, groups, full_pools)
            limit = full_pools.get(job.pool) if reason is Reason.POOL_AT_MAX and isinstance(full_pools, Mapping) else None
            explanations[index] = _explain(
                job, reason, pool=job.pool, regions=job.regions, cores_mcpu=job.cores_mcpu,
                memory_bytes=job.memory_bytes, storage_gib=job.storage_gib,
                **({"limit": limit[0], "limit_value": limit[1]} if limit else {}))
    return result


def _groups_for(pool_groups: Iterable[tuple[str, bool, _Group]], job: ReadyJob) -> list[_Group]:
    """The instance groups a job may use: its pool, its regions, and preemptibility it accepts."""
    allowed = None if job.regions is None else set(job.regions)
    return [
        group
        for region, preemptible, group in pool_groups
        if (allowed is None or region in allowed) and not (preemptible and not job.preemptible)
    ]


def _no_capacity_reason(
    job: ReadyJob, groups: Mapping[str, list[tuple[str, bool, _Group]]], full_pools: Collection[str]
) -> Reason:
    if job.pool in full_pools:
        return Reason.POOL_AT_MAX
    return Reason.NO_CAPACITY if _groups_for(groups.get(job.pool, ()), job) else Reason.NO_INSTANCES


def _explain(job: ReadyJob, reason: Reason, **detail: object) -> Explanation:
    return Explanation(batch_id=job.batch_id, job_id=job.job_id, reason=reason, detail=tuple(detail.items()))


def _job_private_request(job: ReadyJob) -> JobPrivateRequest:
    assert job.machine_type is not None
    return JobPrivateRequest(
        job.batch_id,
        job.job_id,
        job.user,
        job.machine_type,
        job.cores_mcpu,
        job.memory_bytes,
        job.storage_gib,
        job.preemptible,
        job.regions,
    )
