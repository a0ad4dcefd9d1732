"""The front end's rows for a batch, an update and a job group, as the store reads them
(services/front/store.py) and the planner takes them (services/front/update_plan.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BatchRow:
    batch_id: int
    user_name: str
    billing_project: str
    token: str
    attributes: dict[str, str]
    time_created: int
    cancelled: bool
    deleted: bool
    n_updates: int
    n_reserved_jobs: int
    n_reserved_job_groups: int
    n_committed_jobs: int
    retry_policy: dict[str, Any] | None = None  # the default for the batch's jobs (services/front/retry_policy.py)


@dataclass(frozen=True, slots=True)
class UpdateRow:
    batch_id: int
    update_id: int
    token: str
    n_jobs: int
    n_job_groups: int
    start_job_id: int
    start_job_group_id: int
    time_created: int
    committed: bool
    time_committed: int | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    job_group_id: int
    parent_job_group_id: int | None
    depth: int
    cancelled: bool
