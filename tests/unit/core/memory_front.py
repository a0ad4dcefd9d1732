"""The front end's write path without PostgreSQL, for the lifecycle's property tests: Hail-shaped
JSON goes through the front's own parser (services/front/specs.py) and planner
(services/front/update_plan.py), so the events the core folds are the ones the API appends.

Where the front's store keeps rows in PostgreSQL (services/front/store.py), this keeps them in
memory; the rules on them (the next update's id blocks, a closed update or cancelled batch taking
nothing more, the commit's counts, group depth and parents) are the planner's functions, called
here as the store and services/front/submission.py call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from events.catalog import Event
from events.core.state import ROOT_JOB_GROUP_ID
from services.front.specs import SpecRules, parse_batch, parse_groups, parse_jobs, parse_update
from services.front.store import BatchRow, GroupRow, UpdateRow
from services.front.update_plan import (
    Stamp,
    batch_created,
    cancel_requested,
    check_commit_counts,
    check_committable,
    check_open,
    group_cancel_requested,
    next_update,
    plan_groups,
    plan_jobs,
    update_committed,
    update_created,
)

RULES = SpecRules()


def job_body(job_id: int, *, parents: Sequence[int] = (), in_update_parents: Sequence[int] = (), group: int = 0,
             in_update_group: int | None = None, always_run: bool = False, n_max_attempts: int = 20,
             retry_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job as Hail's client sends it: `job_id` and `in_update_*` relative to its update, `parents`
    and `group` absolute (of earlier updates)."""
    body: dict[str, Any] = {
        "job_id": job_id, "absolute_parent_ids": list(parents), "in_update_parent_ids": list(in_update_parents),
        "always_run": always_run, "n_max_attempts": n_max_attempts,
        "process": {"type": "docker", "image": "ubuntu:24.04", "command": ["true"]},
        "resources": {"cpu": "1"}}  # a standard worker's share: 3.75 GiB
    if in_update_group is None:
        body["absolute_job_group_id"] = group
    else:
        body["in_update_job_group_id"] = in_update_group
    if retry_policy is not None:
        body["retry_policy"] = retry_policy
    return body


class MemoryFront:
    """One user's batch, written through the front's planner; each call returns the events to append."""

    def __init__(self, batch_id: int, user: str, producer: str, clock: Any) -> None:
        self.batch_id, self.user, self.producer, self.clock = batch_id, user, producer, clock
        self.batch: BatchRow | None = None
        self.updates: dict[int, UpdateRow] = {}
        self.groups: dict[int, GroupRow] = {}
        self.received: dict[int, tuple[int, int]] = {}  # update id -> jobs, groups received

    def _stamp(self) -> Stamp:
        return Stamp(producer=self.producer, occurred_at=self.clock.tick())

    def create_batch(self, body: dict[str, Any]) -> list[Event]:
        spec = parse_batch(body)
        self.batch = BatchRow(batch_id=self.batch_id, user_name=self.user, billing_project=spec.billing_project,
                              token=spec.token, attributes=spec.attributes, time_created=self.clock.tick(),
                              cancelled=False, deleted=False, n_updates=0, n_reserved_jobs=0,
                              n_reserved_job_groups=0, n_committed_jobs=0, retry_policy=spec.retry_policy)
        self.groups[ROOT_JOB_GROUP_ID] = GroupRow(job_group_id=ROOT_JOB_GROUP_ID, parent_job_group_id=None, depth=0,
                                                  cancelled=False)
        return [batch_created(self.batch, spec, self._stamp())]

    def create_update(self, body: dict[str, Any]) -> tuple[int, list[Event]]:
        assert self.batch is not None, "create the batch first"
        update = next_update(self.batch, parse_update(body), self.clock.tick())
        self.batch = replace(self.batch, n_updates=update.update_id,
                             n_reserved_jobs=self.batch.n_reserved_jobs + update.n_jobs,
                             n_reserved_job_groups=self.batch.n_reserved_job_groups + update.n_job_groups)
        self.updates[update.update_id] = update
        self.received[update.update_id] = (0, 0)
        return update.update_id, [update_created(update, self._stamp())]

    def add_groups(self, update_id: int, bodies: list[dict[str, Any]]) -> list[Event]:
        update = self._open_update(update_id)
        events, rows = plan_groups(update, parse_groups(bodies), self.groups, self._stamp())
        self.groups.update((row.job_group_id, row) for row in rows)
        jobs, groups = self.received[update_id]
        self.received[update_id] = (jobs, groups + len(rows))
        return list(events)

    def add_jobs(self, update_id: int, bodies: list[dict[str, Any]]) -> list[Event]:
        update = self._open_update(update_id)
        assert self.batch is not None
        events = plan_jobs(update, self.batch, parse_jobs(bodies, RULES), self._stamp(), pools=RULES.pools)
        jobs, groups = self.received[update_id]
        self.received[update_id] = (jobs + len(events), groups)
        return list(events)

    def commit(self, update_id: int) -> list[Event]:
        assert self.batch is not None
        update = self.updates[update_id]
        if update.committed:
            return []  # a repeated commit is answered, not appended again
        check_committable(self.batch, update)
        check_commit_counts(update, *self.received[update_id])
        self.updates[update_id] = replace(update, committed=True, time_committed=self.clock.now)
        return [update_committed(update, self._stamp())]

    def cancel_batch(self) -> list[Event]:
        assert self.batch is not None
        self.batch = replace(self.batch, cancelled=True)
        return [cancel_requested(self.batch, "requested", self._stamp())]

    def cancel_group(self, job_group_id: int) -> list[Event]:
        assert self.batch is not None
        self.groups[job_group_id] = replace(self.groups[job_group_id], cancelled=True)
        return [group_cancel_requested(self.batch, job_group_id, self._stamp())]

    def _open_update(self, update_id: int) -> UpdateRow:
        assert self.batch is not None
        update = self.updates[update_id]
        check_open(self.batch, update)
        return update
