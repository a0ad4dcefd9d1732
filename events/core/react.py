"""react(state) -> events: what the state calls for that is not yet reflected in it.

Computed from the STATE, never from "the last event", so running it again after a crash
re-derives exactly the same events: ids come from `derived_event_id` over what they are about,
`occurred_at` and `causation_id` from the event that made them necessary (no clock).

Incremental: only the jobs, groups and batch-level facts that evolve marked dirty are examined.
Every event react returns is one evolve will accept when it comes back from the log — unless an
event appended by someone else in between changed the picture (e.g. an SJ placed the job before
our JobCancelled landed); then evolve ignores it and react, looking at the new state, derives
what is needed now (here: AttemptKillRequested).

A cancelled job that is Creating (its job-private instance still booting) runs nothing yet, so
there is nothing to kill: react ends its attempt itself with an MJC (outcome Cancelled, cause
`cancelled`), as Hail's canceller does, and the usual verdict completes the job as Cancelled.

The verdicts on scheduling decisions (JobAttemptAccepted / JobAttemptRefused, see decisions.py)
come first, in the order the decisions landed: an accepted attempt's AttemptAssigned (or the MJC
that ends a cancelled Creating attempt) always follows its verdict.

Assignment-topic events (AttemptAssigned, AttemptKillRequested) never come back to the batch
topic, so react repeats them whenever the job is looked at again; their ids are stable, so the
caller (and the worker) can drop repeats.
"""

from __future__ import annotations

from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    BatchCancelled,
    BatchCompleted,
    Event,
    JobAttemptAccepted,
    JobAttemptCompleted,
    JobAttemptRefused,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobGroupCancelled,
)
from events.core.evolve import PARENTS_COMPLETE, RETRY
from events.core.retries import decide_retry
from events.core.state import (
    CANCELLED,
    COMPLETE_STATES,
    CREATING,
    ERROR,
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
    Verdict,
)
from events.envelope import derived_event_id
from events.failures import CANCELLED_WHILE_CREATING, TOO_MANY_ATTEMPTS, is_system_failure

# reasons carried by the derived events
REQUESTED = "requested"
CANCEL_AFTER_N_FAILURES = "cancel_after_n_failures"
DELETED = "deleted"
PARENT_FAILED = "parent_failed"
BATCH_CANCELLED = "batch_cancelled"
GROUP_CANCELLED = "group_cancelled"


def react(state: BatchState, producer: str, *, everything: bool = False) -> list[Event]:
    """Derived events for what evolve marked dirty (or for the whole batch if `everything`).

    Does not clear the dirty marks: call `state.clear_dirty()` once the events are handed on.
    """
    out: list[Event] = []
    if state.verdicts_due:  # first: a verdict precedes whatever follows from the decision it judges
        due = state.verdicts_due
        for event_id in (list(due) if everything else state.new_verdicts):
            verdict = due.get(event_id)
            if verdict is not None:
                out.append(_verdict(state, verdict, producer))
    if everything or state.dirty_batch or state.dirty_groups:
        _react_groups(state, producer, out, everything)
    jobs = state.jobs
    job_ids = sorted(jobs) if everything else sorted(state.dirty_jobs)
    for job_id in job_ids:
        job = jobs.get(job_id)
        if job is not None and job.committed and job.state not in COMPLETE_STATES:
            _react_job(state, job, producer, out)
    return out


# --- batch and groups ---------------------------------------------------------------------------

def _react_groups(s: BatchState, producer: str, out: list[Event], everything: bool) -> None:
    root = s.root
    if not root.cancelled:
        reason = _cancel_reason(s, root)
        if reason is not None:
            out.append(BatchCancelled(event_id=derived_event_id("BatchCancelled", s.batch_id),
                                      occurred_at=s.cause_at, producer=producer, causation_id=s.cause_id,
                                      batch_id=s.batch_id, reason=reason))
    group_ids = sorted(s.groups) if everything else sorted(s.dirty_groups)
    for gid in group_ids:
        group = s.groups[gid]
        if gid == ROOT_JOB_GROUP_ID or group.cancelled:
            continue
        reason = _cancel_reason(s, group)
        if reason is not None:
            out.append(JobGroupCancelled(
                event_id=derived_event_id("JobGroupCancelled", s.batch_id, gid), occurred_at=s.cause_at,
                producer=producer, causation_id=s.cause_id, batch_id=s.batch_id, job_group_id=gid,
                reason=reason))
    if s.closed and s.complete and s.completed_n_jobs != s.n_jobs:
        out.append(BatchCompleted(
            event_id=derived_event_id("BatchCompleted", s.batch_id, s.n_jobs), occurred_at=s.cause_at,
            producer=producer, causation_id=s.cause_id, batch_id=s.batch_id, n_jobs=s.n_jobs,
            n_succeeded=s.n_succeeded, n_failed=s.n_failed, n_cancelled=s.n_cancelled))


def _cancel_reason(s: BatchState, group: JobGroup) -> str | None:
    """Why this (uncancelled) group must now be cancelled, if it must."""
    if group.cancel_requested:
        return DELETED if group.job_group_id == ROOT_JOB_GROUP_ID and s.deleted else REQUESTED
    limit = group.cancel_after_n_failures
    if limit is not None and group.n_failed >= limit and not group.complete:
        return CANCEL_AFTER_N_FAILURES
    return None


# --- jobs -----------------------------------------------------------------------------------------

def _react_job(s: BatchState, job: Job, producer: str, out: list[Event]) -> None:
    state = job.state
    if state == PENDING:
        if not job.always_run and s.is_group_cancelled(job.job_group_id):
            out.append(_job_cancelled(s, job, producer, _group_reason(s, job)))  # no need to wait for parents
        elif job.n_pending_parents == 0:
            if job.parent_failed and not job.always_run:
                out.append(_job_cancelled(s, job, producer, PARENT_FAILED))
            else:
                out.append(JobBecameReady(
                    event_id=derived_event_id("JobBecameReady", s.batch_id, job.job_id, PARENTS_COMPLETE),
                    occurred_at=job.cause_at, producer=producer, causation_id=job.cause_id, batch_id=s.batch_id,
                    job_id=job.job_id, reason=PARENTS_COMPLETE))
    elif state == READY:
        if s.is_job_cancelled(job):
            out.append(_job_cancelled(s, job, producer, _group_reason(s, job)))
    elif job.completion is not None:
        out.append(_completion_verdict(s, job, job.completion, producer))
    elif s.is_job_cancelled(job):
        attempt = job.attempt
        assert attempt is not None
        if state == CREATING:  # nothing runs yet: end the attempt here, no worker is involved (Hail's canceller)
            out.append(_creating_cancelled(s, job, attempt, producer))
            return
        if attempt.started_at is None and job.spec is not None:
            # accepted and cancelled before any worker reported it started — maybe within one step,
            # before its assignment was ever sent: send it (again) ahead of the kill, so the worker
            # that holds the attempt knows it and ends it; a kill of an unknown attempt ends nothing
            out.append(_assignment(s, job, attempt, producer))
        out.append(AttemptKillRequested(
            event_id=derived_event_id("AttemptKillRequested", s.batch_id, job.job_id, attempt.attempt_id),
            occurred_at=job.cause_at, producer=producer, causation_id=job.cause_id,
            instance_name=attempt.instance_name, batch_id=s.batch_id, job_id=job.job_id,
            attempt_id=attempt.attempt_id, reason=_group_reason(s, job)))
    elif state == RUNNING and job.attempt is not None and job.attempt.started_at is None and job.spec is not None:
        out.append(_assignment(s, job, job.attempt, producer))


def _assignment(s: BatchState, job: Job, attempt: Attempt, producer: str) -> AttemptAssigned:
    assert job.spec is not None
    return AttemptAssigned(
        event_id=derived_event_id("AttemptAssigned", s.batch_id, job.job_id, attempt.attempt_id),
        occurred_at=attempt.scheduled_at, producer=producer, causation_id=attempt.scheduled_event_id,
        instance_name=attempt.instance_name, batch_id=s.batch_id, job_id=job.job_id,
        attempt_id=attempt.attempt_id, job_group_id=job.job_group_id, user=s.user, spec=job.spec,
        cores_mcpu=attempt.cores_mcpu, memory_bytes=attempt.memory_bytes, storage_gib=attempt.storage_gib)


def _verdict(s: BatchState, v: Verdict, producer: str) -> JobAttemptAccepted | JobAttemptRefused:
    """The published judgement of a scheduling decision (its time and id are the decision's)."""
    if v.reason is None:
        return JobAttemptAccepted(
            event_id=v.event_id, occurred_at=v.decided_at, producer=producer, causation_id=v.decision_event_id,
            batch_id=s.batch_id, job_id=v.job_id, attempt_id=v.attempt_id, instance_name=v.instance_name,
            state=v.asked, scheduler_epoch=v.epoch, cores_mcpu=v.cores_mcpu, memory_bytes=v.memory_bytes,
            storage_gib=v.storage_gib)
    return JobAttemptRefused(
        event_id=v.event_id, occurred_at=v.decided_at, producer=producer, causation_id=v.decision_event_id,
        batch_id=s.batch_id, job_id=v.job_id, attempt_id=v.attempt_id, instance_name=v.instance_name,
        state=v.asked, scheduler_epoch=v.epoch, reason=v.reason)


def _completion_verdict(s: BatchState, job: Job, done: Completion, producer: str) -> Event:
    """An accepted MJC decides the job: a retry (events/core/retries.py: a system failure with attempts
    left, or what the job's retry policy retries), or the end of the job."""
    retry = decide_retry(job, done, s.is_job_cancelled(job))
    if retry is not None:
        return JobBecameReady(
            event_id=derived_event_id("JobBecameReady", s.batch_id, job.job_id, RETRY, done.attempt_id),
            occurred_at=done.occurred_at, producer=producer, causation_id=done.event_id, batch_id=s.batch_id,
            job_id=job.job_id, after_attempt_id=done.attempt_id, not_before=retry.not_before, reason=RETRY,
            retry_cause=done.failure_cause, retry_rule=retry.rule, memory_bytes=retry.memory_bytes,
            preemptible=retry.preemptible)
    if done.outcome != SUCCESS and is_system_failure(done.failure_cause):
        if s.is_job_cancelled(job):
            return _job_completed(s, job, done, producer, CANCELLED, done.failure_cause)
        return _job_completed(s, job, done, producer, ERROR, TOO_MANY_ATTEMPTS)
    final = done.outcome if done.outcome in COMPLETE_STATES else ERROR
    # cancelled while Creating: say why, as JobCancelled would have (the attempt keeps `cancelled`)
    reason = _group_reason(s, job) if done.failure_cause == CANCELLED_WHILE_CREATING else done.failure_cause
    return _job_completed(s, job, done, producer, final, reason)


def _creating_cancelled(s: BatchState, job: Job, attempt: Attempt, producer: str) -> JobAttemptCompleted:
    """MJC Cancelled for the attempt of a cancelled Creating job: it never ran (not started, not billed).
    Its verdict completes the job as Cancelled; the job-private instance, no longer waited for, is
    deleted by the autoscaler, and an SJ placing the attempt there after all is fenced by evolve."""
    return JobAttemptCompleted(
        event_id=derived_event_id("JobAttemptCompleted", CANCELLED_WHILE_CREATING, s.batch_id, job.job_id,
                                  attempt.attempt_id),
        occurred_at=job.cause_at, producer=producer, causation_id=job.cause_id, batch_id=s.batch_id,
        job_id=job.job_id, attempt_id=attempt.attempt_id, instance_name=attempt.instance_name, outcome=CANCELLED,
        exit_code=None, failure_cause=CANCELLED_WHILE_CREATING, error=None, out_of_memory=False, started_at=None,
        ended_at=job.cause_at, steps=(), resource_usage=None)


def _job_completed(s: BatchState, job: Job, done: Completion, producer: str, final: str,
                   reason: str | None) -> JobCompleted:
    return JobCompleted(
        event_id=derived_event_id("JobCompleted", s.batch_id, job.job_id, done.attempt_id),
        occurred_at=done.occurred_at, producer=producer, causation_id=done.event_id, batch_id=s.batch_id,
        job_id=job.job_id, state=final, attempt_id=done.attempt_id, exit_code=done.exit_code, reason=reason,
        n_attempts=job.n_attempts)


def _job_cancelled(s: BatchState, job: Job, producer: str, reason: str) -> JobCancelled:
    return JobCancelled(event_id=derived_event_id("JobCancelled", s.batch_id, job.job_id),
                        occurred_at=job.cause_at, producer=producer, causation_id=job.cause_id,
                        batch_id=s.batch_id, job_id=job.job_id, reason=reason)


def _group_reason(s: BatchState, job: Job) -> str:
    if job.parent_failed and not s.is_group_cancelled(job.job_group_id):
        return PARENT_FAILED
    return BATCH_CANCELLED if s.root.cancelled else GROUP_CANCELLED
