"""The scheduler's projection: a pure fold of batch- and instance-topic events.

`SchedulingState.apply(event)` is deterministic: no clock, no I/O, no randomness; times come from
the events themselves. It answers what the scheduler and autoscaler ask each cycle:

- the ready queue per (user, pool), in order, and ready/running cores per user (fair-share input);
- free cpu / memory / storage per instance, and which instances are active or pending;
- which attempts run where (health uses it to end the attempts of a lost instance).

Whether a scheduling decision (SJ or JobCreating) counts is the resolver's call, published as
JobAttemptAccepted / JobAttemptRefused (events/core/decisions.py); this fold follows the verdicts.
Decisions written before verdicts existed (`awaits_verdict` false: logs of earlier releases) get
none; they are taken where they land, by the rule this fold used then (`_take_in_place`).
Between a decision and its verdict the decision is *held*: the job leaves the ready queue and the
attempt takes capacity, so no pass places the job twice or over-commits an instance, whoever
appended the decision (this scheduler, a deposed one, the one before a take-over). A refusal puts
the job back where it was; an acceptance of a decision not held (one decided while another was
held) is taken from the verdict. Repeats of judged decisions are told apart by the same rule the
core uses, so none is held for a verdict that never comes.

A job-private instance is requested for one attempt ("batch:job:attempt"). Once the job lets go
of that attempt — its Creating attempt ended (cancelled, or timed out), the attempt ran and
ended, the job completed, or the JobCreating was refused — the claim is *released*, and
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
    JobAttemptAccepted,
    JobAttemptCompleted,
    JobAttemptRefused,
    JobAttemptScheduled,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobCreating,
)
from events.core.decisions import CREATING, RUNNING, DecisionKey, decision_key, is_repeat
from events.core.resources import pool_name
from projections.scheduling.model import (
    JOB_PRIVATE_POOL,
    AttemptEntry,
    Demand,
    Hold,
    InstanceEntry,
    InstanceState,
    JobEntry,
    JobIdBitmap,
    JobKey,
    JobPhase,
)
from projections.scheduling.ready_queue import ReadyQueue

_ATTEMPT_PHASES = frozenset({JobPhase.CREATING, JobPhase.RUNNING, JobPhase.FINISHING})


def job_pool(worker_type: str, preemptible: bool, machine_type: str | None) -> str:
    return JOB_PRIVATE_POOL if machine_type else pool_name(worker_type, preemptible)


EARLY_HEARTBEATS_PRUNE_AT = 1024
EARLY_HEARTBEAT_HORIZON_MS = 10 * 60 * 1000


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
        self.finished = JobIdBitmap()  # every job that completed: 1 bit each, so copies of old events stay inert
        self.refused: set[DecisionKey] = set()  # the decisions the resolver refused (rare): repeats are ignored
        self.legacy_epochs: dict[int, int] = {}  # batch -> newest epoch of its decisions from before verdicts
        self.events_applied = 0
        # heartbeats have a topic of their own, so a refold may meet an instance's (compacted, newest)
        # heartbeat before the instance: kept until the instance appears, pruned by event time
        self.early_heartbeats: dict[str, int] = {}
        self._newest_heartbeat = 0
        self._prune_early_at = EARLY_HEARTBEATS_PRUNE_AT

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

    def retry_times(self) -> list[int]:
        """When each ready job waiting out a retry's backoff may run (the scheduler wakes up then)."""
        return [j.not_before for j in self.jobs.values() if j.phase is JobPhase.READY and j.not_before is not None]

    # ---- the fold ----------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event; True when it may have made new work schedulable or freed capacity."""
        handler = _HANDLERS.get(type(event))
        self.events_applied += 1
        return handler(self, event) if handler is not None else False

    def _on_job_created(self, e: JobCreated) -> bool:
        if (e.batch_id, e.job_id) in self.jobs or self.finished.has(e.batch_id, e.job_id):
            return False  # a copy of a JobCreated: a job is created once (a finished one stays finished)
        r = e.spec.resources
        self.jobs[(e.batch_id, e.job_id)] = JobEntry(
            key=(e.batch_id, e.job_id), user=e.user, pool=job_pool(r.worker_type, r.preemptible, r.machine_type),
            demand=Demand(r.cores_mcpu, r.memory_bytes, r.storage_gib), preemptible=r.preemptible,
            regions=e.spec.regions, machine_type=r.machine_type)
        return False

    def _on_ready(self, e: JobBecameReady) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None:
            return False
        if e.after_attempt_id is None:  # its parents completed: only a Pending job (as the core says)
            if job.settled_phase is not JobPhase.PENDING:
                return False
        elif job.settled_attempt != e.after_attempt_id or job.settled_phase not in _ATTEMPT_PHASES:
            return False  # a retry of an attempt that is not the job's (any more)
        if job.attempt_id is not None:  # a retry whose attempt we never saw end: free it now
            self._release_attempt(job.attempt_id)
            self._release_private_claim(job, job.attempt_id)
        self.creating.discard(job.key)
        job.phase, job.not_before, job.attempt_id, job.held = JobPhase.READY, e.not_before, None, None
        job.in_place = False
        _apply_retry_policy(job, e)
        self._queue(job).add(job.key, job.demand)
        return True

    # ---- scheduling decisions and their verdicts (events/core/decisions.py) -----------------------

    def _on_decision(self, e: JobAttemptScheduled | JobCreating) -> bool:
        """Hold a decision that may count until its verdict: the job leaves the queue, its attempt
        takes capacity. Whether it counts is never decided here."""
        job = self.jobs.get((e.batch_id, e.job_id))
        creating = isinstance(e, JobCreating)
        if job is None:
            if creating:  # it completed already (JobCreated always comes first): nobody will use the instance
                self.released_private.add(f"{e.batch_id}:{e.job_id}:{e.attempt_id}")
            return False
        if not e.awaits_verdict:
            return self._take_in_place(job, e)
        key = decision_key(e.job_id, e.attempt_id, CREATING if creating else RUNNING, e.scheduler_epoch)
        waiting = job.attempt_id if job.phase is JobPhase.CREATING else None
        if job.held is not None or is_repeat(key, job.attempt_ids, self.refused, waiting):
            return False  # one decision is held at a time; any other is settled by its own verdict
        if e.attempt_id not in job.attempt_ids and job.phase is JobPhase.READY:
            job.held = Hold(key, JobPhase.READY)
            self._queue(job).discard(job.key, job.demand)
            job.attempt_ids = (*job.attempt_ids, e.attempt_id)
        elif not creating and waiting == e.attempt_id:  # its job-private instance booted
            job.held = Hold(key, JobPhase.CREATING)
        else:
            return False
        if isinstance(e, JobCreating):
            self._place(job, e.attempt_id, None, job.demand, held=True)
        else:
            self._place(job, e.attempt_id, e.instance_name, Demand(e.cores_mcpu, e.memory_bytes, e.storage_gib),
                        held=True)
        return False

    def _take_in_place(self, job: JobEntry, e: JobAttemptScheduled | JobCreating) -> bool:
        """A decision written before verdicts: no verdict will come, so it counts or not here, by the
        rule this fold had then (a deposed leader's decision is fenced by the batch's newest epoch;
        a fresh attempt needs the job Ready, a boot its Creating attempt). Where the core judged a
        race with a cancellation otherwise, its JobCancelled ends the job (`_on_job_finished`)."""
        newest = self.legacy_epochs.get(e.batch_id, 0)
        if e.scheduler_epoch < newest or job.held is not None:
            fresh, boot = False, False
        else:
            self.legacy_epochs[e.batch_id] = e.scheduler_epoch
            fresh = job.phase is JobPhase.READY and e.attempt_id not in job.attempt_ids
            boot = (isinstance(e, JobAttemptScheduled) and job.phase is JobPhase.CREATING
                    and job.attempt_id == e.attempt_id)
        if isinstance(e, JobCreating):
            if not fresh:
                if job.attempt_id != e.attempt_id:  # refused: nobody will use the instance asked for it
                    self._release_private_claim(job, e.attempt_id)
                return False
            self._queue(job).discard(job.key, job.demand)
            job.attempt_ids = (*job.attempt_ids, e.attempt_id)
            self._place(job, e.attempt_id, None, job.demand, held=False, in_place=True)
            return False
        if fresh:
            self._queue(job).discard(job.key, job.demand)
            job.attempt_ids = (*job.attempt_ids, e.attempt_id)
        elif not boot:
            return False
        self._place(job, e.attempt_id, e.instance_name, Demand(e.cores_mcpu, e.memory_bytes, e.storage_gib),
                    held=False, in_place=True)
        return False

    def _on_accepted(self, e: JobAttemptAccepted) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None:
            return False
        held = job.held
        if held is not None and held.decision[1:3] == (e.attempt_id, e.state):
            job.held = None  # the decision we held counts
            attempt = self.attempts.get(e.attempt_id)
            if attempt is not None:
                attempt.held = False
            return False
        boot = e.state == RUNNING and job.settled_phase is JobPhase.CREATING and job.settled_attempt == e.attempt_id
        fresh_held = held.decision[1] if held is not None and held.previous is JobPhase.READY else None
        if e.attempt_id in job.attempt_ids and e.attempt_id != fresh_held and not boot:
            return False  # a copy of a verdict taken already
        if held is not None:  # we held another decision: the log says this one counts
            self._undo(job, held)
        placed_from = job.phase is JobPhase.READY or (
            e.state == RUNNING and job.phase is JobPhase.CREATING and job.attempt_id == e.attempt_id)
        if not placed_from:
            return False  # already past it
        if job.phase is JobPhase.READY:
            self._queue(job).discard(job.key, job.demand)
        if e.attempt_id not in job.attempt_ids:
            job.attempt_ids = (*job.attempt_ids, e.attempt_id)
        self._place(job, e.attempt_id, e.instance_name if e.state == RUNNING else None,
                    Demand(e.cores_mcpu, e.memory_bytes, e.storage_gib), held=False)
        return False

    def _on_refused(self, e: JobAttemptRefused) -> bool:
        key = decision_key(e.job_id, e.attempt_id, e.state, e.scheduler_epoch)
        self.refused.add(key)
        job = self.jobs.get((e.batch_id, e.job_id))
        freed = False
        if job is not None and job.held is not None and job.held.decision == key:
            self._undo(job, job.held)
            freed = True
        if e.state == CREATING:  # the instance asked for this attempt will never be used
            self.released_private.add(f"{e.batch_id}:{e.job_id}:{e.attempt_id}")
        return freed

    def _place(self, job: JobEntry, attempt_id: str, instance_name: str | None, demand: Demand, held: bool,
               in_place: bool = False) -> None:
        """The job's attempt waits for its job-private instance (no instance yet) or runs on one."""
        job.attempt_id = attempt_id
        job.in_place = in_place
        if instance_name is None:
            job.phase = JobPhase.CREATING
            self.creating.add(job.key)
            return
        self.creating.discard(job.key)
        job.phase = JobPhase.RUNNING
        self.attempts[attempt_id] = AttemptEntry(attempt_id, job.key, instance_name, job.user, job.pool, demand, held)
        self.running_cores[job.pool][job.user] += demand.cores_mcpu
        inst = self.instances.get(instance_name)
        if inst is not None:
            inst.free_cores_mcpu -= demand.cores_mcpu
            inst.free_memory_bytes -= demand.memory_bytes
            inst.free_storage_gib -= demand.storage_gib
            inst.attempts.add(attempt_id)
            inst.idle_since = None

    def _undo(self, job: JobEntry, held: Hold) -> None:
        """A held decision does not count: put the job back where it was."""
        job.held = None
        attempt_id = held.decision[1]
        self._release_attempt(attempt_id)
        if held.previous is JobPhase.CREATING:  # a refused boot: the attempt still waits for its instance
            job.phase = JobPhase.CREATING
            self.creating.add(job.key)
            return
        self.creating.discard(job.key)
        job.attempt_ids = tuple(a for a in job.attempt_ids if a != attempt_id)
        job.phase, job.attempt_id = JobPhase.READY, None
        self._queue(job).add(job.key, job.demand)

    def _on_attempt_completed(self, e: JobAttemptCompleted) -> bool:
        freed = self._release_attempt(e.attempt_id, ended_at=e.ended_at)
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is not None and job.attempt_id == e.attempt_id:
            job.held = None  # only an attempt that counts is ended (its verdict came first)
            was_creating = job.phase is JobPhase.CREATING
            self.creating.discard(job.key)
            job.phase = JobPhase.FINISHING  # its attempt stays the current one until the verdict
            self._release_private_claim(job, e.attempt_id)
            if was_creating:
                self._forget_private_instance(e.instance_name)
        return freed

    def _on_job_finished(self, e: JobCompleted | JobCancelled) -> bool:
        job = self.jobs.get((e.batch_id, e.job_id))
        if job is None:
            return False
        # the core's fences: JobCancelled ends a job without an attempt, JobCompleted the job whose
        # current attempt it names (a verdict that lost to a retry of that attempt changes nothing)
        if isinstance(e, JobCancelled):
            # (an attempt taken in place, from before verdicts, may be one the core refused: it
            # raced the cancellation; that release ended it here too)
            if job.settled_phase not in (JobPhase.PENDING, JobPhase.READY) and not job.in_place:
                return False
        elif job.settled_attempt != e.attempt_id or job.settled_phase not in _ATTEMPT_PHASES:
            return False
        del self.jobs[job.key]
        self.finished.add(e.batch_id, e.job_id)
        self._queue(job).discard(job.key, job.demand)
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
            requested_at=e.occurred_at, machine_type=e.machine_type, job_private_for=e.job_private_for,
            last_heartbeat_at=self.early_heartbeats.pop(e.instance_name, None))
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
                                 requested_at=e.occurred_at, created=True,
                                 last_heartbeat_at=self.early_heartbeats.pop(e.instance_name, None))
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
        self._newest_heartbeat = max(self._newest_heartbeat, e.occurred_at)
        inst = self.instances.get(e.instance_name)
        if inst is not None:
            if inst.last_heartbeat_at is None or e.occurred_at > inst.last_heartbeat_at:
                inst.last_heartbeat_at = e.occurred_at
            return False
        if e.occurred_at > self.early_heartbeats.get(e.instance_name, -1):
            self.early_heartbeats[e.instance_name] = e.occurred_at
        if len(self.early_heartbeats) > self._prune_early_at:
            # a live instance's newest heartbeat is recent: one far older than the newest seen belongs
            # to an instance that is gone (deleted, forgotten) and whose heartbeat came after its end
            horizon = self._newest_heartbeat - EARLY_HEARTBEAT_HORIZON_MS
            self.early_heartbeats = {n: t for n, t in self.early_heartbeats.items() if t >= horizon}
            self._prune_early_at = max(EARLY_HEARTBEATS_PRUNE_AT, 2 * len(self.early_heartbeats))
        return False

    def _on_instance_deactivated(self, e: InstanceDeactivated) -> bool:
        inst = self.instances.get(e.instance_name)
        if inst is not None and inst.state is not InstanceState.INACTIVE:
            inst.state, inst.deactivated_at = InstanceState.INACTIVE, e.occurred_at
            inst.deactivation_reason = e.reason  # the first deactivation says why
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


def _apply_retry_policy(job: JobEntry, e: JobBecameReady) -> None:
    """A retry may change what the job's next attempts ask for (events/core/retries.py): more memory,
    or non-preemptible instances only (another pool, the same worker type)."""
    if e.memory_bytes is not None and e.memory_bytes != job.demand.memory_bytes:
        job.demand = Demand(job.demand.cores_mcpu, e.memory_bytes, job.demand.storage_gib)
    if e.preemptible is False and job.preemptible:
        job.preemptible = False
        if job.pool != JOB_PRIVATE_POOL:  # a preemptible pool is named after its worker type
            job.pool = pool_name(job.pool, False)


_HANDLERS: dict[type, Callable[[SchedulingState, Any], bool]] = {
    JobCreated: SchedulingState._on_job_created,
    JobBecameReady: SchedulingState._on_ready,
    JobCreating: SchedulingState._on_decision,
    JobAttemptScheduled: SchedulingState._on_decision,
    JobAttemptAccepted: SchedulingState._on_accepted,
    JobAttemptRefused: SchedulingState._on_refused,
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
