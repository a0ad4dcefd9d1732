"""decide(state, command) -> events: validate a front-end command against a batch's state (Hail's
rules) and return the events that record it, or raise a typed error (events/core/errors.py).

decide never changes the state; the caller appends the events and folds them with evolve.
A repeated command (same token, resent bunch, second commit, second cancel) returns [].
"""

from __future__ import annotations

from functools import singledispatch

from events.catalog import (
    BatchCancelRequested,
    BatchCreated,
    BatchDeleted,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    Event,
    JobCreated,
    JobGroupCancelRequested,
    JobGroupCreated,
)
from events.core.commands import (
    AddJobGroups,
    AddJobs,
    CancelBatch,
    CancelJobGroup,
    Command,
    CommitUpdate,
    CreateBatch,
    CreateUpdate,
    DeleteBatch,
    JobDraft,
    JobGroupDraft,
)
from events.core.errors import (
    BatchAlreadyExists,
    BatchIsCancelled,
    BatchNotFound,
    InvalidJob,
    InvalidJobGroup,
    InvalidUpdate,
    JobGroupNotFound,
    UpdateAlreadyCommitted,
    UpdateNotFound,
    WrongNumberOfJobGroups,
    WrongNumberOfJobs,
)
from events.core.state import MAX_JOB_GROUP_DEPTH, ROOT_JOB_GROUP_ID, BatchState, Update
from events.envelope import derived_event_id


def decide(state: BatchState | None, command: Command) -> list[Event]:
    """The events `command` produces on `state` (None: the batch does not exist yet)."""
    if isinstance(command, CreateBatch):
        return _create_batch(state, command)
    if state is None:
        raise BatchNotFound(command.batch_id)
    return _decide(command, state)


def _create_batch(state: BatchState | None, c: CreateBatch) -> list[Event]:
    if state is not None:
        if state.token == c.token and state.user == c.user:
            return []  # a retried create
        raise BatchAlreadyExists(c.batch_id)
    if c.cancel_after_n_failures is not None and c.cancel_after_n_failures <= 0:
        raise InvalidUpdate(f"cancel_after_n_failures must be a positive integer, got {c.cancel_after_n_failures}")
    return [BatchCreated(event_id=c.command_id, occurred_at=c.occurred_at, producer=c.producer,
                         batch_id=c.batch_id, user=c.user, billing_project=c.billing_project, token=c.token,
                         attributes=dict(c.attributes), callback=c.callback,
                         cancel_after_n_failures=c.cancel_after_n_failures)]


@singledispatch
def _decide(command: Command, state: BatchState) -> list[Event]:
    raise TypeError(f"decide does not handle {type(command).__name__}")


@_decide.register
def _create_update(c: CreateUpdate, s: BatchState) -> list[Event]:
    if _is_cancelled(s):
        raise BatchIsCancelled(s.batch_id, "create an update")
    if s.update_by_token(c.token) is not None:
        return []  # a retried create: the caller reads the existing update from the state
    if c.n_jobs < 0 or c.n_job_groups < 0:
        raise InvalidUpdate(f"n_jobs and n_job_groups must be >= 0, got {c.n_jobs} and {c.n_job_groups}")
    update_id = max(s.updates, default=0) + 1
    return [BatchUpdateCreated(event_id=c.command_id, occurred_at=c.occurred_at, producer=c.producer,
                               batch_id=s.batch_id, update_id=update_id, token=c.token, n_jobs=c.n_jobs,
                               n_job_groups=c.n_job_groups, start_job_id=s.next_job_id(),
                               start_job_group_id=s.next_job_group_id())]


@_decide.register
def _add_job_groups(c: AddJobGroups, s: BatchState) -> list[Event]:
    update = _open_update(s, c.update_id)
    depth_of = {gid: g.depth for gid, g in s.groups.items()}  # plus the groups of this bunch, as we go
    out: list[Event] = []
    for draft in c.job_groups:
        gid = _real_group_id(update, draft)
        if gid in s.groups:
            continue  # a resent bunch
        parent_id = _group_parent(s, update, draft, depth_of)
        if depth_of[parent_id] + 1 > MAX_JOB_GROUP_DEPTH:
            raise InvalidJobGroup(draft.job_group_id, f"job groups nest at most {MAX_JOB_GROUP_DEPTH} deep; "
                                                      f"parent {parent_id} is already at depth {depth_of[parent_id]}")
        if parent_id in s.groups and s.is_group_cancelled(parent_id):
            raise InvalidJobGroup(draft.job_group_id, f"cannot add a job group under cancelled job group {parent_id}")
        if draft.cancel_after_n_failures is not None and draft.cancel_after_n_failures <= 0:
            raise InvalidJobGroup(draft.job_group_id, "cancel_after_n_failures must be a positive integer")
        depth_of[gid] = depth_of[parent_id] + 1
        out.append(JobGroupCreated(
            event_id=derived_event_id("JobGroupCreated", s.batch_id, gid), occurred_at=c.occurred_at,
            producer=c.producer, causation_id=c.command_id, batch_id=s.batch_id, update_id=update.update_id,
            job_group_id=gid, parent_job_group_id=parent_id, attributes=dict(draft.attributes),
            callback=draft.callback, cancel_after_n_failures=draft.cancel_after_n_failures))
    return out


def _real_group_id(update: Update, draft: JobGroupDraft) -> int:
    if not 1 <= draft.job_group_id <= update.n_job_groups:
        raise InvalidJobGroup(draft.job_group_id, f"job_group_id must be between 1 and {update.n_job_groups} "
                                                  f"(the update's n_job_groups)")
    return update.start_job_group_id + draft.job_group_id - 1


def _group_parent(s: BatchState, update: Update, draft: JobGroupDraft, depth_of: dict[int, int]) -> int:
    if draft.absolute_parent_id is not None and draft.in_update_parent_id is not None:
        raise InvalidJobGroup(draft.job_group_id, "give absolute_parent_id or in_update_parent_id, not both")
    if draft.in_update_parent_id is not None:
        if not 0 < draft.in_update_parent_id < draft.job_group_id:
            raise InvalidJobGroup(draft.job_group_id, "in_update_parent_id must name an earlier job group of "
                                                      "this update (0 < id < job_group_id)")
        parent = update.start_job_group_id + draft.in_update_parent_id - 1
    else:
        parent = ROOT_JOB_GROUP_ID if draft.absolute_parent_id is None else draft.absolute_parent_id
        if parent >= update.start_job_group_id:
            raise InvalidJobGroup(draft.job_group_id, f"absolute_parent_id {parent} is not a job group of an "
                                                      "earlier update: use in_update_parent_id")
    if parent not in depth_of:
        raise InvalidJobGroup(draft.job_group_id, f"parent job group {parent} does not exist")
    return parent


@_decide.register
def _add_jobs(c: AddJobs, s: BatchState) -> list[Event]:
    update = _open_update(s, c.update_id)
    out: list[Event] = []
    for draft in c.jobs:
        if not 1 <= draft.job_id <= update.n_jobs:
            raise InvalidJob(draft.job_id, f"job_id must be between 1 and {update.n_jobs} (the update's n_jobs)")
        job_id = update.start_job_id + draft.job_id - 1
        if job_id in s.jobs:
            continue  # a resent bunch
        if draft.n_max_attempts < 1:
            raise InvalidJob(draft.job_id, f"n_max_attempts must be >= 1, got {draft.n_max_attempts}")
        out.append(JobCreated(
            event_id=derived_event_id("JobCreated", s.batch_id, job_id), occurred_at=c.occurred_at,
            producer=c.producer, causation_id=c.command_id, batch_id=s.batch_id, job_id=job_id,
            update_id=update.update_id, job_group_id=_job_group(s, update, draft),
            parent_ids=_job_parents(s, update, draft), always_run=draft.always_run,
            n_max_attempts=draft.n_max_attempts, user=s.user, billing_project=s.billing_project,
            attributes=dict(draft.attributes), spec=draft.spec, spec_json=draft.spec_json))
    return out


def _job_parents(s: BatchState, update: Update, draft: JobDraft) -> tuple[int, ...]:
    parents: set[int] = set()
    for p in draft.in_update_parent_ids:
        if not 0 < p < draft.job_id:
            raise InvalidJob(draft.job_id, f"in_update_parent_ids: {p} is not an earlier job of this update "
                                           "(0 < id < job_id)")
        parents.add(update.start_job_id + p - 1)  # may arrive in a later bunch: checked by the commit count
    for p in draft.absolute_parent_ids:
        if not 1 <= p < update.start_job_id:
            raise InvalidJob(draft.job_id, f"absolute_parent_ids: {p} is not a job of an earlier update "
                                           "(use in_update_parent_ids for jobs of this update)")
        if p not in s.jobs:
            raise InvalidJob(draft.job_id, f"absolute_parent_ids: parent job {p} does not exist")
        parents.add(p)
    return tuple(sorted(parents))


def _job_group(s: BatchState, update: Update, draft: JobDraft) -> int:
    if draft.absolute_job_group_id is not None and draft.in_update_job_group_id is not None:
        raise InvalidJob(draft.job_id, "give absolute_job_group_id or in_update_job_group_id, not both")
    if draft.in_update_job_group_id is not None:
        if not 1 <= draft.in_update_job_group_id <= update.n_job_groups:
            raise InvalidJob(draft.job_id, f"in_update_job_group_id must be between 1 and {update.n_job_groups}")
        gid = update.start_job_group_id + draft.in_update_job_group_id - 1
    else:
        gid = ROOT_JOB_GROUP_ID if draft.absolute_job_group_id is None else draft.absolute_job_group_id
    if gid not in s.groups:
        raise InvalidJob(draft.job_id, f"job group {gid} does not exist: create job groups before their jobs")
    return gid


@_decide.register
def _commit_update(c: CommitUpdate, s: BatchState) -> list[Event]:
    update = s.updates.get(c.update_id)
    if update is None:
        raise UpdateNotFound(s.batch_id, c.update_id)
    if update.committed:
        return []
    if _is_cancelled(s):
        raise BatchIsCancelled(s.batch_id, "commit an update")
    if update.n_jobs_created != update.n_jobs:
        raise WrongNumberOfJobs(update.n_jobs, update.n_jobs_created)
    if update.n_job_groups_created != update.n_job_groups:
        raise WrongNumberOfJobGroups(update.n_job_groups, update.n_job_groups_created)
    return [BatchUpdateCommitted(
        event_id=derived_event_id("BatchUpdateCommitted", s.batch_id, update.update_id), occurred_at=c.occurred_at,
        producer=c.producer, causation_id=c.command_id, batch_id=s.batch_id, update_id=update.update_id,
        n_jobs=update.n_jobs, n_job_groups=update.n_job_groups, start_job_id=update.start_job_id,
        start_job_group_id=update.start_job_group_id)]


@_decide.register
def _cancel_batch(c: CancelBatch, s: BatchState) -> list[Event]:
    if _is_cancelled(s):
        return []
    return [BatchCancelRequested(event_id=c.command_id, occurred_at=c.occurred_at, producer=c.producer,
                                 batch_id=s.batch_id, user=c.user, reason=c.reason)]


@_decide.register
def _cancel_job_group(c: CancelJobGroup, s: BatchState) -> list[Event]:
    group = s.groups.get(c.job_group_id)
    if group is None:
        raise JobGroupNotFound(s.batch_id, c.job_group_id)
    if group.cancel_requested or s.is_group_cancelled(c.job_group_id):
        return []
    return [JobGroupCancelRequested(event_id=c.command_id, occurred_at=c.occurred_at, producer=c.producer,
                                    batch_id=s.batch_id, job_group_id=c.job_group_id, user=c.user)]


@_decide.register
def _delete_batch(c: DeleteBatch, s: BatchState) -> list[Event]:
    if s.deleted:
        return []
    return [BatchDeleted(event_id=c.command_id, occurred_at=c.occurred_at, producer=c.producer,
                         batch_id=s.batch_id, user=c.user)]


def _open_update(s: BatchState, update_id: int) -> Update:
    update = s.updates.get(update_id)
    if update is None:
        raise UpdateNotFound(s.batch_id, update_id)
    if update.committed:
        raise UpdateAlreadyCommitted(s.batch_id, update_id)
    if _is_cancelled(s):
        raise BatchIsCancelled(s.batch_id, "add to an update")
    return update


def _is_cancelled(s: BatchState) -> bool:
    return s.cancelled or s.cancel_requested
