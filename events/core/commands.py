"""Commands the front end gives the lifecycle (`decide`). Frozen; ids, time and producer come in
from outside (the core reads no clock and draws no ids).

`command_id` is unique per request (the front end makes it, e.g. a uuid); events that exist once
per thing (a job, a job group, an update's commit) get ids derived from the thing instead, so a
resent request yields recognisably the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from events.catalog import JobSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    command_id: str
    occurred_at: int  # ms since the epoch
    producer: str
    batch_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBatch(Command):
    """POST /batches/create (and the first half of create-fast). `token` makes it idempotent."""

    user: str
    billing_project: str
    token: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    callback: str | None = None
    cancel_after_n_failures: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateUpdate(Command):
    """POST /batches/{id}/updates/create: reserve the next blocks of job and job-group ids."""

    token: str
    n_jobs: int
    n_job_groups: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGroupDraft:
    """A job-group spec as sent, with update-relative ids (validated by decide)."""

    job_group_id: int  # 1..n_job_groups within the update
    absolute_parent_id: int | None = None
    in_update_parent_id: int | None = None  # neither: the root group 0
    attributes: Mapping[str, str] = field(default_factory=dict)
    callback: str | None = None
    cancel_after_n_failures: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddJobGroups(Command):
    update_id: int
    job_groups: tuple[JobGroupDraft, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDraft:
    """A job spec as sent, with update-relative ids; `spec` is already resolved (resources etc.)."""

    job_id: int  # 1..n_jobs within the update
    spec: JobSpec
    spec_json: str
    absolute_parent_ids: tuple[int, ...] = ()
    in_update_parent_ids: tuple[int, ...] = ()
    absolute_job_group_id: int | None = None
    in_update_job_group_id: int | None = None  # neither: the root group 0
    always_run: bool = False
    n_max_attempts: int = 20
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddJobs(Command):
    """One bunch of jobs. Bunches may arrive in any order; a resent bunch adds nothing twice."""

    update_id: int
    jobs: tuple[JobDraft, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitUpdate(Command):
    update_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelBatch(Command):
    user: str
    reason: str = "requested"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelJobGroup(Command):
    user: str
    job_group_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteBatch(Command):
    user: str
