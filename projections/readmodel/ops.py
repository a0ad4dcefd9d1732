"""Read-model operations: what one event asks of the tables, before any guard is applied.

`convert` (pure) turns an event into ops; `fold.ReadModel.apply` applies them to row images with
the guards that make re-delivery and re-ordering harmless; the sink writes the merged images.
Times are ms since the epoch, always taken from the event, never from a clock.

Ops are values: nothing changes one after it is made. They are not `frozen` dataclasses only
because a frozen dataclass's __init__ costs about twice as much, and replay builds two ops per
event (every batch event also yields a RecordAudit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CreateBatch:
    batch_id: int
    user: str
    billing_project: str
    token: str
    attributes: dict[str, str]
    callback: str | None
    cancel_after_n_failures: int | None
    at: int
    retry_policy: dict[str, Any] | None = None  # the batch's default for its jobs


@dataclass(slots=True)
class CreateUpdate:
    batch_id: int
    update_id: int
    token: str
    n_jobs: int
    n_job_groups: int
    start_job_id: int
    start_job_group_id: int
    at: int


@dataclass(slots=True)
class CommitUpdate:
    batch_id: int
    update_id: int
    n_jobs: int
    at: int


@dataclass(slots=True)
class CreateJobGroup:
    batch_id: int
    job_group_id: int
    parent_job_group_id: int
    update_id: int
    attributes: dict[str, str]
    callback: str | None
    cancel_after_n_failures: int | None
    at: int


@dataclass(slots=True)
class CancelJobGroup:
    """A group (0: the whole batch) is cancelled; requested or derived, the flag is the same."""

    batch_id: int
    job_group_id: int


@dataclass(slots=True)
class DeleteBatch:
    batch_id: int


@dataclass(slots=True)
class CompleteBatch:
    batch_id: int
    n_jobs: int  # the batch size the completion was derived for: a stale one is ignored
    at: int


@dataclass(slots=True)
class CreateJob:
    batch_id: int
    job_id: int
    job_group_id: int
    update_id: int
    name: str | None
    user: str
    billing_project: str
    always_run: bool
    n_max_attempts: int
    parent_ids: tuple[int, ...]
    attributes: dict[str, str]
    spec: Any  # the spec JSON document
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    worker_type: str | None
    at: int
    retry_policy: dict[str, Any] | None = None


@dataclass(slots=True)
class MarkJobReady:
    batch_id: int
    job_id: int
    after_attempt_id: str | None  # set for a retry: only the job's current attempt may be retried
    not_before: int | None
    at: int
    # a retry's decision (events/core/retries.py): its rule and the failure it retries, and what the
    # job's next attempts ask for when a retry policy changed it (None: as before)
    retry_rule: str | None = None
    retry_cause: str | None = None
    memory_bytes: int | None = None
    preemptible: bool | None = None


@dataclass(slots=True)
class ScheduleAttempt:
    """An accepted scheduling decision (JobAttemptAccepted): the attempt waits for its job-private
    instance (creating=True) or runs on `instance_name` (creating=False; for a Creating job, its
    instance booted)."""

    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    cores_mcpu: int | None
    memory_bytes: int | None
    storage_gib: int | None
    creating: bool
    at: int


@dataclass(slots=True)
class StartAttempt:
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    started_at: int


@dataclass(slots=True)
class EndAttempt:
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    outcome: str
    exit_code: int | None
    failure_cause: str | None
    error: str | None
    started_at: int | None
    ended_at: int
    status: dict[str, Any]


@dataclass(slots=True)
class ReportRunning:
    """One attempt of a worker's billing update (RunningAttemptsReported): running at `at`."""

    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    at: int


@dataclass(slots=True)
class CompleteJob:
    batch_id: int
    job_id: int
    state: str  # Success | Failed | Error | Cancelled
    attempt_id: str | None
    exit_code: int | None
    reason: str | None
    n_attempts: int | None
    at: int


@dataclass(slots=True)
class RecordAudit:
    batch_id: int
    job_id: int | None
    topic: str
    partition: int
    offset: int
    event_type: str
    event_id: str
    occurred_at: int
    causation_id: str | None
    producer: str
    attempt_id: str | None


@dataclass(slots=True)
class UpsertInstance:
    """An instance event: `state` is where it moves (None: no state change, e.g. a heartbeat);
    `values` are the columns it fills; a state never moves backwards."""

    name: str
    state: str | None
    values: tuple[tuple[str, Any], ...]
    heartbeat_at: int | None = None


@dataclass(slots=True)
class RecordPoolDecision:
    """A PoolScalingDecided, kept as it was (append-only, keyed by its position, like RecordAudit)."""

    topic: str
    partition: int
    offset: int
    pool: str
    event_id: str
    occurred_at: int
    producer: str
    decision: dict[str, Any]


Op = (CreateBatch | CreateUpdate | CommitUpdate | CreateJobGroup | CancelJobGroup | DeleteBatch
      | CompleteBatch | CreateJob | MarkJobReady | ScheduleAttempt | StartAttempt | EndAttempt
      | ReportRunning | CompleteJob | RecordAudit | UpsertInstance | RecordPoolDecision)
