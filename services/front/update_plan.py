"""Pure planning: parsed specs + an update's reserved id block → the events to append.

No I/O here: the checks that need state take it as arguments, so they can run before anything
is reserved, and a retried request derives exactly the same events (ids from batch/update/job ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events.catalog import (
    BatchCancelRequested,
    BatchCreated,
    BatchDeleted,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    JobCreated,
    JobGroupCancelRequested,
    JobGroupCreated,
)
from events.core.autoscale import PoolConfig
from events.core.state import MAX_JOB_GROUP_DEPTH
from events.envelope import derived_event_id
from services.front.errors import Conflict, InvalidRequest
from services.front.retry_policy import as_event_policy, effective_policy
from services.front.rows import BatchRow, GroupRow, UpdateRow
from services.front.specs import BatchRequest, GroupRequest, JobRequest, UpdateRequest


@dataclass(frozen=True, slots=True)
class Stamp:
    """Who appends, and when: every event of one request shares it."""

    producer: str
    occurred_at: int


def batch_created(batch: BatchRow, spec: BatchRequest, stamp: Stamp) -> BatchCreated:
    return BatchCreated(
        event_id=derived_event_id("BatchCreated", batch.batch_id), occurred_at=batch.time_created,
        producer=stamp.producer, batch_id=batch.batch_id, user=batch.user_name,
        billing_project=batch.billing_project, token=batch.token, attributes=spec.attributes,
        callback=spec.callback, cancel_after_n_failures=spec.cancel_after_n_failures,
        retry_policy=as_event_policy(spec.retry_policy))


def update_created(update: UpdateRow, stamp: Stamp) -> BatchUpdateCreated:
    return BatchUpdateCreated(
        event_id=derived_event_id("BatchUpdateCreated", update.batch_id, update.update_id),
        occurred_at=update.time_created, producer=stamp.producer, batch_id=update.batch_id,
        update_id=update.update_id, token=update.token, n_jobs=update.n_jobs, n_job_groups=update.n_job_groups,
        start_job_id=update.start_job_id, start_job_group_id=update.start_job_group_id)


def update_committed(update: UpdateRow, stamp: Stamp) -> BatchUpdateCommitted:
    return BatchUpdateCommitted(
        event_id=derived_event_id("BatchUpdateCommitted", update.batch_id, update.update_id),
        occurred_at=stamp.occurred_at, producer=stamp.producer, batch_id=update.batch_id,
        update_id=update.update_id, n_jobs=update.n_jobs, n_job_groups=update.n_job_groups,
        start_job_id=update.start_job_id, start_job_group_id=update.start_job_group_id)


def cancel_requested(batch: BatchRow, reason: str, stamp: Stamp) -> BatchCancelRequested:
    return BatchCancelRequested(
        event_id=derived_event_id("BatchCancelRequested", batch.batch_id), occurred_at=stamp.occurred_at,
        producer=stamp.producer, batch_id=batch.batch_id, user=batch.user_name, reason=reason)


def group_cancel_requested(batch: BatchRow, job_group_id: int, stamp: Stamp) -> JobGroupCancelRequested:
    return JobGroupCancelRequested(
        event_id=derived_event_id("JobGroupCancelRequested", batch.batch_id, job_group_id),
        occurred_at=stamp.occurred_at, producer=stamp.producer, batch_id=batch.batch_id,
        job_group_id=job_group_id, user=batch.user_name)


def batch_deleted(batch: BatchRow, stamp: Stamp) -> BatchDeleted:
    return BatchDeleted(event_id=derived_event_id("BatchDeleted", batch.batch_id), occurred_at=stamp.occurred_at,
                        producer=stamp.producer, batch_id=batch.batch_id, user=batch.user_name)


def next_update(batch: BatchRow, spec: UpdateRequest, now_ms: int) -> UpdateRow:
    """The update `spec` opens on `batch`: the next update id and the next blocks of job and group ids.
    `batch` must be current (the store reads it locked), so blocks never overlap."""
    if batch.cancelled:
        raise Conflict(f"batch {batch.batch_id} is cancelled: it accepts no new updates")
    return UpdateRow(
        batch_id=batch.batch_id, update_id=batch.n_updates + 1, token=spec.token, n_jobs=spec.n_jobs,
        n_job_groups=spec.n_job_groups, start_job_id=batch.n_reserved_jobs + 1,
        start_job_group_id=batch.n_reserved_job_groups + 1, time_created=now_ms, committed=False,
        time_committed=None)


def check_open(batch: BatchRow, update: UpdateRow) -> None:
    """Jobs and groups are added only to an uncommitted update of a batch not cancelled."""
    if update.committed:
        raise Conflict(f"update {update.update_id} of batch {batch.batch_id} is already committed; "
                       "create a new update to add jobs")
    if batch.cancelled:
        raise Conflict(f"batch {batch.batch_id} is cancelled: it accepts no new jobs or job groups")


def check_committable(batch: BatchRow, update: UpdateRow) -> None:
    """A cancelled batch commits nothing (the caller has already answered a repeated commit)."""
    if batch.cancelled:
        raise Conflict(f"batch {batch.batch_id} is cancelled: its update {update.update_id} cannot be committed")


def check_commit_counts(update: UpdateRow, n_jobs_received: int, n_groups_received: int) -> None:
    """Hail's commit check, with Hail's message."""
    if n_jobs_received != update.n_jobs:
        raise Conflict(f"wrong number of jobs: expected {update.n_jobs}, actual {n_jobs_received}")
    if n_groups_received != update.n_job_groups:
        raise Conflict(f"wrong number of job groups: expected {update.n_job_groups}, actual {n_groups_received}")


def plan_groups(update: UpdateRow, groups: Sequence[GroupRequest], existing: Mapping[int, GroupRow],
                stamp: Stamp, field: str = "job_groups") -> tuple[list[JobGroupCreated], list[GroupRow]]:
    """JobGroupCreated events and the rows to record; checks ids, parents, depth, cancelled parents."""
    known = dict(existing)
    events: list[JobGroupCreated] = []
    rows: list[GroupRow] = []
    for i, group in enumerate(groups):
        where = f"{field}[{i}]"
        if group.job_group_id > update.n_job_groups:
            raise InvalidRequest(f"{where}.job_group_id",
                                 f"{group.job_group_id} is outside this update's n_job_groups={update.n_job_groups}")
        absolute_id = update.start_job_group_id + group.job_group_id - 1
        if group.in_update_parent_id is not None:
            parent_id = update.start_job_group_id + group.in_update_parent_id - 1
        else:
            assert group.absolute_parent_id is not None
            parent_id = group.absolute_parent_id
            if parent_id >= update.start_job_group_id:
                raise InvalidRequest(f"{where}.absolute_parent_id",
                                     f"{parent_id} is not a group of an earlier update; use in_update_parent_id "
                                     "for a group of this update")
        parent = known.get(parent_id)
        if parent is None:
            raise InvalidRequest(f"{where}", f"parent job group {parent_id} does not exist (yet); submit parents first")
        if parent.cancelled:
            raise Conflict(f"{where}: parent job group {parent_id} is cancelled; no groups can be added under it")
        if parent.depth + 1 > MAX_JOB_GROUP_DEPTH:
            raise InvalidRequest(f"{where}", f"job groups nest at most {MAX_JOB_GROUP_DEPTH} deep under the root; "
                                             f"group {parent_id} is already at depth {parent.depth}")
        row = GroupRow(job_group_id=absolute_id, parent_job_group_id=parent_id, depth=parent.depth + 1,
                       cancelled=False)
        known[absolute_id] = row
        rows.append(row)
        events.append(JobGroupCreated(
            event_id=derived_event_id("JobGroupCreated", update.batch_id, absolute_id),
            occurred_at=update.time_created, producer=stamp.producer, batch_id=update.batch_id,
            update_id=update.update_id, job_group_id=absolute_id, parent_job_group_id=parent_id,
            attributes=group.attributes, callback=group.callback,
            cancel_after_n_failures=group.cancel_after_n_failures))
    return events, rows


def plan_jobs(update: UpdateRow, batch: BatchRow, jobs: Sequence[JobRequest], stamp: Stamp,
              field: str = "bunch", pools: Sequence[PoolConfig] = ()) -> list[JobCreated]:
    """JobCreated events with absolute ids; checks ids fall in the update's block and parents exist, and
    gives each job its retry policy: its own over the batch's default, checked against `pools`."""
    events = []
    for i, job in enumerate(jobs):
        where = f"{field}[{i}]"
        if job.job_id > update.n_jobs:
            raise InvalidRequest(f"{where}.job_id", f"{job.job_id} is outside this update's n_jobs={update.n_jobs}")
        job_id = update.start_job_id + job.job_id - 1
        for k, parent in enumerate(job.absolute_parent_ids):
            if parent >= update.start_job_id:
                raise InvalidRequest(f"{where}.absolute_parent_ids[{k}]",
                                     f"{parent} is not a job of an earlier update (ids < {update.start_job_id}); "
                                     "use in_update_parent_ids for jobs of this update")
        parents = job.absolute_parent_ids + tuple(update.start_job_id + p - 1 for p in job.in_update_parent_ids)
        if job.in_update_job_group_id is not None:
            if job.in_update_job_group_id > update.n_job_groups:
                raise InvalidRequest(f"{where}.in_update_job_group_id",
                                     f"{job.in_update_job_group_id} is outside this update's "
                                     f"n_job_groups={update.n_job_groups}")
            group_id = update.start_job_group_id + job.in_update_job_group_id - 1
        else:
            assert job.absolute_job_group_id is not None
            group_id = job.absolute_job_group_id
            if group_id >= update.start_job_group_id:
                raise InvalidRequest(f"{where}.absolute_job_group_id",
                                     f"{group_id} is not a group of an earlier update; use in_update_job_group_id")
        events.append(JobCreated(
            event_id=derived_event_id("JobCreated", update.batch_id, job_id), occurred_at=update.time_created,
            producer=stamp.producer, batch_id=update.batch_id, job_id=job_id, update_id=update.update_id,
            job_group_id=group_id, parent_ids=tuple(sorted(set(parents))), always_run=job.always_run,
            n_max_attempts=job.n_max_attempts, user=batch.user_name, billing_project=batch.billing_project,
            attributes=job.attributes, spec=job.spec, spec_json=job.spec_json,
            retry_policy=effective_policy(where, batch.retry_policy, job.retry_policy, job.spec.resources, pools)))
    return events
