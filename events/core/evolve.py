"""evolve(state, event) -> state: apply one batch-topic event to a batch's state, idempotently.

Every event is a fact already in the log, so evolve never raises for a "wrong" event: a
duplicate, a re-delivery or a stale report simply changes nothing. Fences (Hail's SJ/MJS/MJC
rules): a scheduling decision (SJ or JobCreating) is judged where it lands, once
(events/core/decisions.py): it counts only for a Ready, uncancelled job, with an attempt id never
used by that job and a scheduler epoch no older than any seen — or, for a Creating job that is not
cancelled, an SJ of its own Creating attempt (its job-private instance booted); either way a
verdict becomes due, which react publishes (JobAttemptAccepted / JobAttemptRefused) for every
other fold to follow. A start or completion counts only for the job's current attempt, and only
once. Jobs count for the batch only once their update commits.

The state is updated in place (see state.py for why) and returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.catalog import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchDeleted,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    Event,
    JobAttemptAccepted,
    JobAttemptCompleted,
    JobAttemptRefused,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobCreating,
    JobGroupCancelled,
    JobGroupCancelRequested,
    JobGroupCreated,
)
from events.core.decisions import DEPOSED, decision_key, is_repeat, refusal
from events.core.state import (
    ATTEMPT_STATES,
    CANCELLED,
    COMPLETE_STATES,
    CREATING,
    ERROR,
    FAILED,
    PENDING,
    READY,
    ROOT_JOB_GROUP_ID,
    RUNNING,
    SUCCESS,
    Attempt,
    BatchState,
    Completion,
    Job,
    JobGroup,
    RetryOverrides,
    Update,
    Verdict,
)
from events.envelope import derived_event_id
from events.failures import PREEMPTED

RETRY = "retry"
PARENTS_COMPLETE = "parents_complete"


def evolve(state: BatchState | None, event: Event) -> BatchState | None:
    """Apply `event` to `state` (None before BatchCreated). Events of other topics, and events for
    a batch that was never created, change nothing."""
    if state is None:
        return new_batch(event) if isinstance(event, BatchCreated) else None
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return state
    if event.batch_id != state.batch_id:  # type: ignore[union-attr]
        raise ValueError(f"event {event.event_id} is for batch {event.batch_id}, "  # type: ignore[union-attr]
                         f"not batch {state.batch_id}: route events by batch_id")
    handler(state, event)
    return state


def fold(events: Any, state: BatchState | None = None) -> BatchState | None:
    """Apply events in order (a batch's slice of the log)."""
    for event in events:
        state = evolve(state, event)
    return state


def new_batch(e: BatchCreated) -> BatchState:
    return BatchState(e.batch_id, e.user, e.billing_project, e.token, e.occurred_at,
                      e.cancel_after_n_failures, e.event_id)


# --- batch, updates, groups, jobs -------------------------------------------------------------

def _batch_created(s: BatchState, e: BatchCreated) -> None:
    """A duplicate BatchCreated: the batch exists already."""


def _update_created(s: BatchState, e: BatchUpdateCreated) -> None:
    if e.update_id in s.updates:
        return
    s.updates[e.update_id] = Update(e.update_id, e.token, e.start_job_id, e.n_jobs,
                                    e.start_job_group_id, e.n_job_groups)


def _job_group_created(s: BatchState, e: JobGroupCreated) -> None:
    parent = s.groups.get(e.parent_job_group_id)
    update = s.updates.get(e.update_id)
    if e.job_group_id in s.groups or parent is None or update is None or update.committed:
        return
    s.groups[e.job_group_id] = JobGroup(e.job_group_id, parent, e.update_id, e.cancel_after_n_failures)
    update.n_job_groups_created += 1


def _job_created(s: BatchState, e: JobCreated) -> None:
    update = s.updates.get(e.update_id)
    if (e.job_id in s.jobs or update is None or update.committed or not update.holds_job(e.job_id)
            or e.job_group_id not in s.groups):
        return
    s.jobs[e.job_id] = Job(e.job_id, e.update_id, e.job_group_id, e.always_run, e.n_max_attempts,
                           e.parent_ids, s.specs.share(e.spec), e.event_id, e.occurred_at,
                           s.specs.share_policy(e.retry_policy))
    update.n_jobs_created += 1


def _update_committed(s: BatchState, e: BatchUpdateCommitted) -> None:
    update = s.updates.get(e.update_id)
    if update is None or update.committed:
        return
    update.committed = True
    s.n_committed_updates += 1
    jobs, groups, dirty = s.jobs, s.groups, s.dirty_jobs
    for job_id in update.job_ids():  # ascending: a parent is always linked before its children
        job = jobs.get(job_id)
        if job is None:
            continue
        job.committed = True
        for g in groups[job.job_group_id].ancestors:
            groups[g].n_jobs += 1
        n_pending = 0
        for parent_id in job.parent_ids:
            parent = jobs.get(parent_id)
            if parent is None:
                continue
            if parent.children is None:
                parent.children = [job_id]
            else:
                parent.children.append(job_id)
            if parent.state in COMPLETE_STATES:
                if parent.state != SUCCESS:
                    job.parent_failed = True
            else:
                n_pending += 1
        job.n_pending_parents = n_pending
        job.parent_ids = ()
        job.cause_id, job.cause_at = e.event_id, e.occurred_at
        dirty.add(job_id)
    _touch_batch(s, e)


# --- job transitions --------------------------------------------------------------------------

def _job_became_ready(s: BatchState, e: JobBecameReady) -> None:
    job = s.jobs.get(e.job_id)
    if job is None or not job.committed:
        return
    if e.reason == RETRY:
        done = job.completion
        if job.state not in ATTEMPT_STATES or done is None or done.attempt_id != e.after_attempt_id:
            return
        job.attempt = None
        job.completion = None
        job.not_before = e.not_before
        if e.memory_bytes is not None or e.preemptible is False:  # a retry policy changed what it asks for
            overrides = _overrides(job)
            if e.memory_bytes is not None:
                overrides.memory_bytes = e.memory_bytes
            if e.preemptible is False:
                overrides.non_preemptible = True
    elif job.state != PENDING or job.n_pending_parents != 0:
        return
    job.state = READY
    _touch_job(s, job, e)


def _job_cancelled(s: BatchState, e: JobCancelled) -> None:
    job = s.jobs.get(e.job_id)
    if job is None or not job.committed or job.state not in (PENDING, READY):
        return
    _complete(s, job, CANCELLED, e)


def _attempt_scheduled(s: BatchState, e: JobAttemptScheduled | JobCreating) -> None:
    """Judge a scheduling decision where it lands (events/core/decisions.py); a verdict becomes due."""
    job = s.jobs.get(e.job_id)
    if job is None or not job.committed:
        return
    asked = RUNNING if isinstance(e, JobAttemptScheduled) else CREATING
    key = decision_key(e.job_id, e.attempt_id, asked, e.scheduler_epoch)
    attempt = job.attempt
    waiting = (attempt.attempt_id if job.state == CREATING and attempt is not None and job.completion is None
               else None)
    if is_repeat(key, job.attempt_ids, s.rejected_attempts, waiting):
        return
    fresh = e.attempt_id not in job.attempt_ids
    reason = refusal(epoch=e.scheduler_epoch, newest_epoch=s.max_scheduler_epoch, cancelled=s.is_job_cancelled(job),
                     fresh_and_ready=fresh and job.state == READY,
                     boots_waiting=asked == RUNNING and waiting == e.attempt_id)
    if reason != DEPOSED:
        s.max_scheduler_epoch = e.scheduler_epoch
    if reason is not None:
        s.rejected_attempts.add(key)
        if e.awaits_verdict:  # a decision from before verdicts (v1) is judged here, in place, and that is all
            _verdict_due(s, e, asked, reason, _requested_resources(e, job))
        return
    if fresh:
        cores, memory, storage = _requested_resources(e, job)
        attempt = Attempt(e.attempt_id, e.instance_name, cores, memory, storage, e.event_id, e.occurred_at)
        job.attempt = attempt
        job.attempt_ids = (*job.attempt_ids, e.attempt_id)
    else:  # the instance of the Creating job booted: the same attempt now runs there
        assert attempt is not None
        attempt.instance_name = e.instance_name
        attempt.scheduled_event_id, attempt.scheduled_at = e.event_id, e.occurred_at
    job.state = asked
    if e.awaits_verdict:
        _verdict_due(s, e, asked, None, (attempt.cores_mcpu, attempt.memory_bytes, attempt.storage_gib))
    _touch_job(s, job, e)


def _verdict_due(s: BatchState, e: JobAttemptScheduled | JobCreating, asked: str, reason: str | None,
                 resources: tuple[int, int, int]) -> None:
    if reason is None:  # an attempt is accepted into each state once
        event_id = derived_event_id("JobAttemptAccepted", s.batch_id, e.job_id, e.attempt_id, asked)
    else:  # refused decisions differ by epoch at least (a new leader may re-decide the same boot)
        event_id = derived_event_id("JobAttemptRefused", s.batch_id, e.job_id, e.attempt_id, asked,
                                    e.scheduler_epoch)
    s.verdicts_due[event_id] = Verdict(event_id, e.job_id, e.attempt_id, e.instance_name, asked, e.scheduler_epoch,
                                       reason, resources, e.event_id, e.occurred_at)
    s.new_verdicts.append(event_id)


def _verdict_published(s: BatchState, e: JobAttemptAccepted | JobAttemptRefused) -> None:
    """Our verdict came back from the log: nothing more to publish for that decision."""
    s.verdicts_due.pop(e.event_id, None)


def _requested_resources(e: JobAttemptScheduled | JobCreating, job: Job) -> tuple[int, int, int]:
    if isinstance(e, JobAttemptScheduled):
        return e.cores_mcpu, e.memory_bytes, e.storage_gib
    r = job.spec.resources if job.spec else None  # JobCreating carries none: the job's own request
    if r is None:
        return (0, 0, 0)
    return (r.cores_mcpu, job.requested_memory_bytes, r.storage_gib)


def _attempt_started(s: BatchState, e: JobAttemptStarted) -> None:
    job = s.jobs.get(e.job_id)
    if job is None:
        return
    attempt = job.attempt
    if (job.state == RUNNING and attempt is not None and attempt.attempt_id == e.attempt_id
            and attempt.started_at is None and job.completion is None):
        attempt.started_at = e.started_at  # from now on the worker has it: no AttemptAssigned to re-send


def _attempt_completed(s: BatchState, e: JobAttemptCompleted) -> None:
    job = s.jobs.get(e.job_id)
    if job is None:
        return
    attempt = job.attempt
    if (job.state not in ATTEMPT_STATES or attempt is None or attempt.attempt_id != e.attempt_id
            or job.completion is not None):
        return  # stale attempt, or a duplicate report
    job.completion = Completion(e.attempt_id, e.outcome, e.exit_code, e.failure_cause, e.ended_at,
                                e.event_id, e.occurred_at)
    if e.failure_cause == PREEMPTED:  # counted once: a completion is accepted once per attempt
        _overrides(job).n_preemptions += 1
    _touch_job(s, job, e)


def _job_completed(s: BatchState, e: JobCompleted) -> None:
    job = s.jobs.get(e.job_id)
    if job is None or e.state not in COMPLETE_STATES:
        return
    done = job.completion
    if job.state not in ATTEMPT_STATES or done is None or done.attempt_id != e.attempt_id:
        return
    job.exit_code = e.exit_code
    _complete(s, job, e.state, e)


def _complete(s: BatchState, job: Job, state: str, e: Event) -> None:
    """The job reached a terminal state: count it in every ancestor group and release its children."""
    job.state = state
    job.attempt = None
    job.completion = None
    job.not_before = None
    job.spec = None  # only AttemptAssigned needed it
    job.cause_id, job.cause_at = e.event_id, e.occurred_at
    groups = s.groups
    failed = state in (ERROR, FAILED)
    for g in groups[job.job_group_id].ancestors:
        group = groups[g]
        group.n_completed += 1
        if state == SUCCESS:
            group.n_succeeded += 1
        elif state == CANCELLED:
            group.n_cancelled += 1
        else:
            group.n_failed += 1
        if failed and group.cancel_after_n_failures is not None:
            s.dirty_groups.add(g)
    if job.children:
        jobs, dirty = s.jobs, s.dirty_jobs
        for child_id in job.children:
            child = jobs[child_id]
            child.n_pending_parents -= 1
            if state != SUCCESS:
                child.parent_failed = True
            child.cause_id, child.cause_at = e.event_id, e.occurred_at
            dirty.add(child_id)
    s.dirty_jobs.discard(job.job_id)
    _touch_batch(s, e)


# --- cancellation and completion of the batch --------------------------------------------------

def _batch_cancel_requested(s: BatchState, e: BatchCancelRequested) -> None:
    if not s.root.cancel_requested:
        s.root.cancel_requested = True
        _touch_batch(s, e)


def _batch_deleted(s: BatchState, e: BatchDeleted) -> None:
    """Deleting cancels first (Hail), then hides the batch."""
    if not s.deleted:
        s.deleted = True
        s.root.cancel_requested = True
        _touch_batch(s, e)


def _group_cancel_requested(s: BatchState, e: JobGroupCancelRequested) -> None:
    group = s.groups.get(e.job_group_id)
    if group is None or group.cancel_requested:
        return
    group.cancel_requested = True
    s.dirty_groups.add(group.job_group_id)
    _touch_batch(s, e)


def _batch_cancelled(s: BatchState, e: BatchCancelled) -> None:
    _cancel_group(s, s.root, e)


def _group_cancelled(s: BatchState, e: JobGroupCancelled) -> None:
    group = s.groups.get(e.job_group_id)
    if group is not None:
        _cancel_group(s, group, e)


def _cancel_group(s: BatchState, group: JobGroup, e: Event) -> None:
    if group.cancelled:
        return
    group.cancelled = True
    s.any_group_cancelled = True
    gid, groups, dirty = group.job_group_id, s.groups, s.dirty_jobs
    for job in s.jobs.values():  # once per cancellation: O(jobs) is fine
        if job.committed and not job.always_run and job.state not in COMPLETE_STATES and (
                gid == ROOT_JOB_GROUP_ID or gid in groups[job.job_group_id].ancestors):
            job.cause_id, job.cause_at = e.event_id, e.occurred_at
            dirty.add(job.job_id)
    _touch_batch(s, e)


def _batch_completed(s: BatchState, e: BatchCompleted) -> None:
    if s.closed and s.complete and e.n_jobs == s.n_jobs:
        s.completed_n_jobs = e.n_jobs


# --- bookkeeping --------------------------------------------------------------------------------

def _overrides(job: Job) -> RetryOverrides:
    if job.overrides is None:
        job.overrides = RetryOverrides()
    return job.overrides


def _touch_job(s: BatchState, job: Job, e: Event) -> None:
    job.cause_id, job.cause_at = e.event_id, e.occurred_at
    s.dirty_jobs.add(job.job_id)


def _touch_batch(s: BatchState, e: Event) -> None:
    s.cause_id, s.cause_at = e.event_id, e.occurred_at
    s.dirty_batch = True


_HANDLERS: dict[type, Callable[[BatchState, Any], None]] = {
    BatchCreated: _batch_created,
    BatchUpdateCreated: _update_created,
    JobGroupCreated: _job_group_created,
    JobCreated: _job_created,
    BatchUpdateCommitted: _update_committed,
    JobBecameReady: _job_became_ready,
    JobCancelled: _job_cancelled,
    JobAttemptScheduled: _attempt_scheduled,
    JobCreating: _attempt_scheduled,
    JobAttemptAccepted: _verdict_published,
    JobAttemptRefused: _verdict_published,
    JobAttemptStarted: _attempt_started,
    JobAttemptCompleted: _attempt_completed,
    JobCompleted: _job_completed,
    BatchCancelRequested: _batch_cancel_requested,
    BatchDeleted: _batch_deleted,
    JobGroupCancelRequested: _group_cancel_requested,
    BatchCancelled: _batch_cancelled,
    JobGroupCancelled: _group_cancelled,
    BatchCompleted: _batch_completed,
}

BATCH_LIFECYCLE_EVENTS: frozenset[type] = frozenset(_HANDLERS)
