"""The scheduler's projection: a pure fold of batch- and instance-topic events.

`SchedulingState.apply(event)` is deterministic: no clock, no I/O, no randomness; times come from
the events themselves. It answers what the scheduler and autoscaler ask each cycle:

- the ready queue per (user, pool), in order, and ready/running cores per user (fair-share input);
- free cpu / memory / storage per instance, and which instances are active or pending;
- which attempts run where (health uses it to end the attempts of a lost instance).

An SJ is accepted exactly when the lifecycle core accepts it (the job is Ready or Creating, and
the SJ's leader epoch is not older than one already seen for that batch), so the capacity the
scheduler believes in matches the attempts the resolver hands to workers. (This fold does not
follow cancellation: an SJ the core refuses because the job is cancelled holds capacity here
until the job's JobCancelled, or its attempt's MJC, comes through.)

A job-private instance is requested for one attempt ("batch:job:attempt"). Once the job lets go
of that attempt — its Creating attempt ended (cancelled, or timed out), the attempt ran and
ended, the job completed, or the core refused the JobCreating — the claim is *released*, and
the autoscaler deletes the instance even if it never activated (Hail's canceller: Creating → MJC
Cancelled, then delete the VM). Releases are kept by claim, so they hold whatever order the batch
and instance topics are folded in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from events.catalog import (
    Event,
    InstanceActivated,
    InstanceCreated,
    InstanceDeactivated,
    InstanceDeleted,
    InstanceHeartbeat,
    InstanceRequested,
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobCreating,
)
from events.core.resources import pool_name
from projections.scheduling.model import (
    JOB_PRIVATE_POOL,
    AttemptEntry,
    Demand,
    InstanceEntry,
    InstanceState,
    JobEntry,
    JobKey,
    JobPhase,
)
from projections.scheduling.ready_queue import ReadyQueue


def job_pool(worker_type: str, preemptible: bool, machine_type: str | None) -> str:
    return JOB_PRIVATE_POOL if machine_type else pool_name(worker_type, preemptible)


class SchedulingState:
    def __init__(self) -> None:
        self.jobs: dict[JobKey, JobEntry] = {}
        self.instances: dict[str, InstanceEntry] = {}
        self.attempts: dict[str, AttemptEntry] = {}
        # (pool, user) -> queue; pools and users appear as jobs do
        self.ready: dict[tuple[str, str], ReadyQueue] = {}
        self.running_cores: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.creating: set[JobKey] = set()  # jobs waiting for their job-private instance
        # job-private claims ("batch:job:attempt") their job no longer waits for; dropped with the instance
        self.released_private: set[str] = set()
        self.epoch_by_batch: dict[int, int] = {}
        # Copies of old events must stay inert (the log may hold a derived event twice, e.g. after a
        # resolver crash): jobs that finished, by batch, so a copy of their JobCreated does not bring
        # them back; and the attempt a FINISHING job ended, so only a retry of it makes the job Ready.
        self.finished_jobs: dict[int, set[int]] = defaultdict(set)
        self.ended_attempt: dict[JobKey, str] = {}
        self.events_applied = 0

    # ---- queries -----------------------------------------------------------------------------

    def pools(self) -> set[str]:
        return {pool for pool, _ in self.ready} | {i.pool for i in self.instances.values()}

    def ready_queues(self, pool: str) -> Iterator[tuple[str, ReadyQueue]]:
        for (p, user), queue in self.ready.items():
            if p == pool and len(queue):
                yield user, queue

    def user_cores(self, pool: str) -> dict[str, tuple[int, int]]:
        """user -> (running mCPU, ready mCPU) in a pool: the fair-share input."""
        out: dict[str, tuple[int, int]] = {}
        running = self.running_cores.get(pool, {})
        for (p, user), queue in self.ready.items():
            if p == pool and (queue.cores_mcpu or running.get(user)):
                out[user] = (running.get(user, 0), queue.cores_mcpu)
        for user, cores in running.items():
            if cores and user not in out:
                out[user] = (cores, 0)
        return out

    def active_instances(self, pool: str | None = None) -> list[InstanceEntry]:
        return [i for i in self.instances.values()
                if i.state is InstanceState.ACTIVE and (pool is None or i.pool == pool)]

    def pending_instances(self, pool: str | None = None) -> list[InstanceEntry]:
        return [i for i in self.instances.values()
                if i.state is InstanceState.PENDING and (pool is None or i.pool == pool)]

    def ready_by_user(self) -> dict[str, int]:
        """Ready jobs per user over every pool (the ready-queue depth metric)."""
        out: dict[str, int] = {}
        for (_, user), queue in self.ready.items():
            out[user] = out.get(user, 0) + len(queue)
        return out

    def n_ready(self) -> int:
        return sum(len(q) for q in self.ready.values())

    # ---- the fold ----------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event; True when it may have made new work schedulable or freed capacity."""
        handler = _HANDLERS.get(type(event))
        self.events_applied += 1
        return handler(self, event) if handler is not None else False

    def _on_job_created(self, e: JobCreated) -> bool:
        if (e.batch_id, e.job_id) in self.jobs or e.job_id in self.finished_jobs.get(e.batch_id, ()):
            return False
        r = e.spec.resources
        self.jobs[(e.batch_id, e.job_id)] = JobEntry(
            key=(e.batch_id, e.job_id), user=e.user, pool=job_pool(r.worker_type, r.preemptible, r.machine_type),
            demand=Demand(r.cores_mcpu, r.memory_bytes, r.storage_gib), preemptible=r.preemptible,
            regions=e.spec.regions, machine_type=r.machine_type)
        return False

    def _on_ready(self, e: JobBecameReady) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None or job.phase is JobPhase.READY:
            return False
        if e.after_attempt_id is None:  # its parents completed: only a Pending job (as the core says)
            if job.phase is not JobPhase.PENDING:
                return False
        elif e.after_attempt_id not in (job.attempt_id, self.ended_attempt.get(job.key)):
            return False  # a copy of a retry of an attempt that is not the job's any more
        self.ended_attempt.pop(job.key, None)
        if job.attempt_id is not None:  # a retry whose attempt we never saw end: free it now
            self._release_attempt(job.attempt_id)
            self._release_private_claim(job, job.attempt_id)
        self.creating.discard(job.key)
        job.phase, job.not_before, job.attempt_id = JobPhase.READY, e.not_before, None
        self._queue(job).add(job.key, job.demand.cores_mcpu)
        return True

    def _on_creating(self, e: JobCreating) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None or job.phase is not JobPhase.READY or self._fenced(e.batch_id, e.scheduler_epoch):
            if job is None:  # it completed already (JobCreated always comes first): nobody will use the instance
                self.released_private.add(f"{e.batch_id}:{e.job_id}:{e.attempt_id}")
            elif job.attempt_id != e.attempt_id:  # refused, not a repeat of the accepted one
                self._release_private_claim(job, e.attempt_id)
            return False
        self._queue(job).discard(job.key, job.demand.cores_mcpu)
        job.phase, job.attempt_id = JobPhase.CREATING, e.attempt_id
        self.creating.add(job.key)
        return False

    def _on_scheduled(self, e: JobAttemptScheduled) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None or self._fenced(e.batch_id, e.scheduler_epoch):
            return False
        if job.phase is JobPhase.READY:
            self._queue(job).discard(job.key, job.demand.cores_mcpu)
        elif not (job.phase is JobPhase.CREATING and job.attempt_id == e.attempt_id):
            return False  # the core rejects it: the job is not waiting for an attempt
        self.creating.discard(job.key)
        job.phase, job.attempt_id = JobPhase.RUNNING, e.attempt_id
        demand = Demand(e.cores_mcpu, e.memory_bytes, e.storage_gib)
        self.attempts[e.attempt_id] = AttemptEntry(e.attempt_id, job.key, e.instance_name, job.user, job.pool, demand)
        self.running_cores[job.pool][job.user] += demand.cores_mcpu
        inst = self.instances.get(e.instance_name)
        if inst is not None:
            inst.free_cores_mcpu -= demand.cores_mcpu
            inst.free_memory_bytes -= demand.memory_bytes
            inst.free_storage_gib -= demand.storage_gib
            inst.attempts.add(e.attempt_id)
            inst.idle_since = None
        return False

    def _on_attempt_completed(self, e: JobAttemptCompleted) -> bool:
        freed = self._release_attempt(e.attempt_id, ended_at=e.ended_at)
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is not None and job.attempt_id == e.attempt_id:
            was_creating = job.phase is JobPhase.CREATING
            self.creating.discard(job.key)
            job.phase, job.attempt_id = JobPhase.FINISHING, None
            self.ended_attempt[job.key] = e.attempt_id
            self._release_private_claim(job, e.attempt_id)
            if was_creating:
                self._forget_private_instance(e.instance_name)
        return freed

    def _on_job_finished(self, e: JobCompleted | JobCancelled) -> bool:
        job = self.jobs.pop((e.batch_id, e.job_id), None)
        if job is None:
            return False
        self.finished_jobs[e.batch_id].add(e.job_id)
        self.ended_attempt.pop(job.key, None)
        self._queue(job).discard(job.key, job.demand.cores_mcpu)
        if job.attempt_id is not None:
            self._release_private_claim(job, job.attempt_id)
        if job.key in self.creating:
            self.creating.discard(job.key)
            job.phase = JobPhase.FINISHING
            self._forget_private_instance_of(job)
        if job.attempt_id is not None:
            return self._release_attempt(job.attempt_id, ended_at=e.occurred_at)
        return False

    def _on_instance_requested(self, e: InstanceRequested) -> bool:
        if e.instance_name in self.instances:
            return False
        self.instances[e.instance_name] = InstanceEntry(
            name=e.instance_name, pool=e.pool, region=e.region, preemptible=e.preemptible,
            cores_mcpu=e.cores_mcpu, memory_bytes=e.memory_bytes, storage_gib=e.storage_gib,
            requested_at=e.occurred_at, machine_type=e.machine_type, job_private_for=e.job_private_for)
        return False

    def _on_instance_created(self, e: InstanceCreated) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is not None:
            inst.created, inst.provider_id = True, e.provider_id
        return False

    def _on_instance_activated(self, e: InstanceActivated) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is None:  # a worker started outside the autoscaler (e.g. by hand): adopt it
            inst = InstanceEntry(name=e.instance_name, pool=e.pool, region=e.region, preemptible=e.preemptible,
                                 cores_mcpu=e.cores_mcpu, memory_bytes=e.memory_bytes, storage_gib=e.storage_gib,
                                 requested_at=e.occurred_at, created=True)
            self.instances[e.instance_name] = inst
        if inst.state is not InstanceState.PENDING:
            return False  # a restarted agent re-announcing itself changes nothing
        inst.state, inst.activated_at = InstanceState.ACTIVE, e.occurred_at
        inst.pool, inst.region, inst.preemptible = e.pool, e.region, e.preemptible
        inst.cores_mcpu, inst.memory_bytes, inst.storage_gib = e.cores_mcpu, e.memory_bytes, e.storage_gib
        used = [self.attempts[a].demand for a in inst.attempts if a in self.attempts]
        inst.free_cores_mcpu = e.cores_mcpu - sum(d.cores_mcpu for d in used)
        inst.free_memory_bytes = e.memory_bytes - sum(d.memory_bytes for d in used)
        inst.free_storage_gib = e.storage_gib - sum(d.storage_gib for d in used)
        inst.idle_since = e.occurred_at if not inst.attempts else None
        return True

    def _on_heartbeat(self, e: InstanceHeartbeat) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is not None and (inst.last_heartbeat_at is None or e.occurred_at > inst.last_heartbeat_at):
            inst.last_heartbeat_at = e.occurred_at
        return False

    def _on_instance_deactivated(self, e: InstanceDeactivated) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is not None and inst.state is not InstanceState.INACTIVE:
            inst.state, inst.deactivated_at = InstanceState.INACTIVE, e.occurred_at
        return False

    def _on_instance_deleted(self, e: InstanceDeleted) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is not None:
            if inst.state is not InstanceState.INACTIVE:
                inst.state, inst.deactivated_at = InstanceState.INACTIVE, e.occurred_at
            inst.deleted = True
            self._forget_if_done(inst)
        return False

    def _forget_if_done(self, inst: InstanceEntry) -> None:
        """Drop a deleted instance once nothing on it waits to be ended (health needs it until then)."""
        if inst.deleted and not inst.attempts and self.private_job_waiting(inst) is None:
            self.instances.pop(inst.name, None)
            if inst.job_private_for:
                self.released_private.discard(inst.job_private_for)

    def private_instance_released(self, inst: InstanceEntry) -> bool:
        """True once the job a job-private instance was requested for will never use it (again): it
        can go, booted or not. Unlike `private_job_waiting() is None`, never true merely because the
        job's JobCreating has not been folded yet."""
        return inst.job_private_for is not None and inst.job_private_for in self.released_private

    def private_job_waiting(self, inst: InstanceEntry) -> JobEntry | None:
        """The Creating job a job-private instance was requested for, while it still waits for it."""
        if not inst.job_private_for:
            return None
        batch_id, job_id, attempt_id = inst.job_private_for.split(":")
        job = self.jobs.get((int(batch_id), int(job_id)))
        if job is not None and job.phase is JobPhase.CREATING and job.attempt_id == attempt_id:
            return job
        return None

    # ---- helpers -----------------------------------------------------------------------------

    def _queue(self, job: JobEntry) -> ReadyQueue:
        queue = self.ready.get((job.pool, job.user))
        if queue is None:
            queue = self.ready[(job.pool, job.user)] = ReadyQueue()
        return queue

    def _fenced(self, batch_id: int, epoch: int) -> bool:
        """A deposed leader's placement: an SJ older than one already seen for this batch."""
        newest = self.epoch_by_batch.get(batch_id, 0)
        if epoch < newest:
            return True
        self.epoch_by_batch[batch_id] = epoch
        return False

    def _release_attempt(self, attempt_id: str, ended_at: int | None = None) -> bool:
        attempt = self.attempts.pop(attempt_id, None)
        if attempt is None:
            return False
        self.running_cores[attempt.pool][attempt.user] -= attempt.demand.cores_mcpu
        inst = self.instances.get(attempt.instance_name)
        if inst is not None:
            inst.free_cores_mcpu += attempt.demand.cores_mcpu
            inst.free_memory_bytes += attempt.demand.memory_bytes
            inst.free_storage_gib += attempt.demand.storage_gib
            inst.attempts.discard(attempt_id)
            if not inst.attempts and ended_at is not None:
                inst.idle_since = ended_at
            self._forget_if_done(inst)
        return True

    def _release_private_claim(self, job: JobEntry, attempt_id: str) -> None:
        if job.pool == JOB_PRIVATE_POOL:  # only their attempts have an instance of their own
            self.released_private.add(f"{job.key[0]}:{job.key[1]}:{attempt_id}")

    def _forget_private_instance(self, name: str) -> None:
        inst = self.instances.get(name)
        if inst is not None:
            self._forget_if_done(inst)

    def _forget_private_instance_of(self, job: JobEntry) -> None:
        for inst in list(self.instances.values()):
            if inst.deleted and inst.job_private_for and inst.job_private_for.startswith(f"{job.key[0]}:{job.key[1]}:"):
                self._forget_if_done(inst)


_HANDLERS: dict[type, Callable[[SchedulingState, Any], bool]] = {
    JobCreated: SchedulingState._on_job_created,
    JobBecameReady: SchedulingState._on_ready,
    JobCreating: SchedulingState._on_creating,
    JobAttemptScheduled: SchedulingState._on_scheduled,
    JobAttemptCompleted: SchedulingState._on_attempt_completed,
    JobCompleted: SchedulingState._on_job_finished,
    JobCancelled: SchedulingState._on_job_finished,
    InstanceRequested: SchedulingState._on_instance_requested,
    InstanceCreated: SchedulingState._on_instance_created,
    InstanceActivated: SchedulingState._on_instance_activated,
    InstanceHeartbeat: SchedulingState._on_heartbeat,
    InstanceDeactivated: SchedulingState._on_instance_deactivated,
    InstanceDeleted: SchedulingState._on_instance_deleted,
}

# the event types the fold reads: a follower may skip decoding everything else
FOLDED_EVENT_NAMES = frozenset(t.__name__ for t in _HANDLERS)  # class name == schema name
