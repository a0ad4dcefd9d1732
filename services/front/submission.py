"""The write side: create batches and updates, add groups and jobs, commit, cancel, delete.

Every operation follows one pattern so that any retry is safe:
1. check and reserve in the front's tables (one transaction; tokens make it idempotent);
2. append the derived events (deterministic ids) — the commit point, acks=all;
3. record what is now in the log (received ranges, committed flag) in a second transaction.
A crash between 2 and 3 makes the retry re-append the same events, which consumers dedupe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from events.catalog import Event, JobCreated
from events.core.autoscale import PoolConfig
from events.errors import LogError
from events.publisher import Publisher
from services.front import store
from services.front.billing import check_under_limit
from services.front.errors import Forbidden, InvalidRequest, NotFound, Unavailable
from services.front.job_files import FileAccess
from services.front.locality import WARNING_ATTRIBUTE, check_locality
from services.front.offload import INLINE_EVENTS, CpuLane
from services.front.specs import ROOT_JOB_GROUP_ID, BatchRequest, GroupRequest, JobRequest, UpdateRequest
from services.front.update_plan import (
    Stamp,
    batch_created,
    batch_deleted,
    cancel_requested,
    check_commit_counts,
    check_committable,
    check_open,
    group_cancel_requested,
    plan_groups,
    plan_jobs,
    update_committed,
    update_created,
)
from services.front.users import is_member

Clock = Callable[[], int]


class Submissions:
    def __init__(self, pool: AsyncConnectionPool, publisher: Publisher, clock: Clock, producer: str,
                 cpu: CpuLane | None = None, files: FileAccess | None = None,
                 pools: tuple[PoolConfig, ...] = ()) -> None:
        self.pool = pool
        self.publisher = publisher
        self.clock = clock
        self.producer = producer
        self.cpu = cpu or CpuLane()
        self.files = files or FileAccess()
        self.pools = pools  # what retry policies are checked against (a retry must fit a worker)

    async def _check_files(self, conn: Any, user: str, billing_project: str, jobs: list[JobRequest]) -> None:
        """Every bucket the jobs name is granted (services/front/job_files.py), and their inputs are in
        one of their regions (services/front/locality.py: refused, or a warning attribute)."""
        await self.files.check(conn, user, billing_project, [(i, j.spec) for i, j in enumerate(jobs)])
        warnings = await check_locality(self.files.locations, self.files.locality,
                                        [(i, j.job_id, j.spec) for i, j in enumerate(jobs)])
        for i, warning in warnings.items():
            jobs[i].attributes[WARNING_ATTRIBUTE] = warning

    def _stamp(self) -> Stamp:
        return Stamp(producer=self.producer, occurred_at=self.clock())

    async def _append(self, events: Sequence[Event]) -> None:
        # encoding a bunch's events is CPU work: off the event loop when there are many
        messages = await self.cpu.run_if(len(events) > INLINE_EVENTS, self.publisher.encode, events)
        try:
            await self.publisher.append(messages)
        except LogError as exc:
            raise Unavailable(f"the event log did not accept the request ({exc}); retry it") from exc

    async def _plan_jobs(self, update: store.UpdateRow, batch: store.BatchRow, jobs: list[JobRequest],
                         stamp: Stamp) -> list[JobCreated]:
        return await self.cpu.run_if(len(jobs) > INLINE_EVENTS, plan_jobs, update, batch, jobs, stamp, "bunch",
                                     self.pools)

    # -- batches ------------------------------------------------------------------------------

    async def create_batch(self, user: str, spec: BatchRequest) -> dict[str, Any]:
        stamp = self._stamp()
        async with self.pool.connection() as conn:
            await _check_billing_project(conn, user, spec.billing_project)
            async with conn.transaction():
                batch, created = await store.insert_batch(conn, user, spec, stamp.occurred_at)
                if created:  # a retry of a create that succeeded gets the same answer, limit or not
                    await check_under_limit(conn, spec.billing_project)
                update = None
                if spec.n_jobs or spec.n_job_groups:
                    update = await store.reserve_update(
                        conn, batch, UpdateRequest(spec.token, spec.n_jobs, spec.n_job_groups), stamp.occurred_at)
        events: list[Event] = [batch_created(batch, spec, stamp)]
        if update is not None:
            events.append(update_created(update, stamp))
        await self._append(events)
        return {"id": batch.batch_id, "update_id": update and update.update_id,
                "start_job_group_id": update and update.start_job_group_id,
                "start_job_id": update and update.start_job_id}

    async def create_fast(self, user: str, spec: BatchRequest, groups: list[GroupRequest],
                          jobs: list[JobRequest]) -> dict[str, Any]:
        stamp = self._stamp()
        update_spec = UpdateRequest(spec.token, spec.n_jobs, spec.n_job_groups)
        async with self.pool.connection() as conn:
            await _check_billing_project(conn, user, spec.billing_project)
            async with conn.transaction():
                batch, created = await store.insert_batch(conn, user, spec, stamp.occurred_at)
                if created:
                    await check_under_limit(conn, spec.billing_project)
                update = await store.reserve_update(conn, batch, update_spec, stamp.occurred_at)
                if update.committed:  # a retry of a create-fast that fully succeeded
                    return _fast_answer(update, id=batch.batch_id)
                await self._check_files(conn, user, spec.billing_project, jobs)
                # Planning inside the transaction: invalid specs roll the reservation back.
                existing = await store.groups_of(conn, batch.batch_id)
                group_events, group_rows = plan_groups(update, groups, existing, stamp)
                job_events = await self._plan_jobs(update, batch, jobs, stamp)
                check_commit_counts(update, len(jobs), len(groups))
        await self._append([batch_created(batch, spec, stamp), update_created(update, stamp), *group_events,
                            *job_events, update_committed(update, stamp)])
        await self._record_fast(update, group_rows, len(jobs), stamp)
        return _fast_answer(update, id=batch.batch_id)

    async def _record_fast(self, update: store.UpdateRow, group_rows: list[store.GroupRow], n_jobs: int,
                           stamp: Stamp) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await store.insert_groups(conn, update.batch_id, update.update_id, group_rows)
            if n_jobs:
                await store.record_job_range(conn, update, 1, n_jobs)
            await store.mark_committed(conn, update, stamp.occurred_at)

    # -- updates ------------------------------------------------------------------------------

    async def create_update(self, user: str, batch_id: int, spec: UpdateRequest) -> dict[str, Any]:
        stamp = self._stamp()
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            await _check_limit_for_new_update(conn, batch, spec)
            update = await store.reserve_update(conn, batch, spec, stamp.occurred_at)
        await self._append([update_created(update, stamp)])
        return {"update_id": update.update_id, "start_job_group_id": update.start_job_group_id,
                "start_job_id": update.start_job_id}

    async def update_fast(self, user: str, batch_id: int, spec: UpdateRequest, groups: list[GroupRequest],
                          jobs: list[JobRequest]) -> dict[str, Any]:
        stamp = self._stamp()
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            await _check_limit_for_new_update(conn, batch, spec)
            update = await store.reserve_update(conn, batch, spec, stamp.occurred_at)
            if update.committed:
                return _fast_answer(update)
            await self._check_files(conn, user, batch.billing_project, jobs)
            existing = await store.groups_of(conn, batch_id)
            group_events, group_rows = plan_groups(update, groups, existing, stamp)
            job_events = await self._plan_jobs(update, batch, jobs, stamp)
            check_commit_counts(update, len(jobs), len(groups))
            await _check_parents_in_log(conn, batch_id, jobs)
        await self._append([update_created(update, stamp), *group_events, *job_events,
                            update_committed(update, stamp)])
        await self._record_fast(update, group_rows, len(jobs), stamp)
        return _fast_answer(update)

    async def add_groups(self, user: str, batch_id: int, update_id: int, groups: list[GroupRequest]) -> None:
        stamp = self._stamp()
        async with self.pool.connection() as conn:
            batch = await store.batch_for_user(conn, batch_id, user)
            update = await store.get_update(conn, batch_id, update_id)
            existing = await store.groups_of(conn, batch_id)
        first_new = update.start_job_group_id + groups[0].job_group_id - 1 if groups else None
        if first_new in existing:  # a resend: every group of a bunch is recorded together
            return
        check_open(batch, update)
        events, rows = plan_groups(update, groups, existing, stamp)
        await self._append(events)
        async with self.pool.connection() as conn, conn.transaction():
            await store.insert_groups(conn, batch_id, update_id, rows)

    async def add_jobs(self, user: str, batch_id: int, update_id: int, jobs: list[JobRequest]) -> None:
        if not jobs:
            return
        stamp = self._stamp()
        first, last = jobs[0].job_id, jobs[-1].job_id
        async with self.pool.connection() as conn:
            batch = await store.batch_for_user(conn, batch_id, user)
            update = await store.get_update(conn, batch_id, update_id)
            if await store.job_range_state(conn, update, first, last):
                return  # a resent bunch: its events are already in the log
            await self._check_files(conn, user, batch.billing_project, jobs)
            check_open(batch, update)
            events = await self._plan_jobs(update, batch, jobs, stamp)
            await _check_parents_in_log(conn, batch_id, jobs)
        await self._append(events)
        async with self.pool.connection() as conn, conn.transaction():
            await store.record_job_range(conn, update, first, last)

    async def commit(self, user: str, batch_id: int, update_id: int) -> dict[str, Any]:
        stamp = self._stamp()
        # One transaction holding the batch row across the append: a concurrent cancel waits for
        # it, so "a cancelled batch commits nothing" holds without a window between check and append.
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            update = await store.get_update(conn, batch_id, update_id)
            if update.committed:
                return _commit_answer(update)
            check_committable(batch, update)
            check_commit_counts(update, *await store.received_counts(conn, update))
            await self._append([update_committed(update, stamp)])
            await store.mark_committed(conn, update, stamp.occurred_at)
        return _commit_answer(update)

    # -- cancel and delete ------------------------------------------------------------------------

    async def cancel(self, user: str, batch_id: int, job_group_id: int = ROOT_JOB_GROUP_ID,
                     reason: str = "cancel") -> None:
        """Mark first (so no update slips in after the 200), then append; a retry re-appends.

        `reason` goes into the root group's BatchCancelRequested: "cancel" from the API,
        BILLING_LIMIT_REASON from the billing-limit loop (services/front/billing_loop.py).
        """
        stamp = self._stamp()
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            if job_group_id == ROOT_JOB_GROUP_ID:
                await store.mark_cancelled(conn, batch_id)
            else:
                if job_group_id not in await store.groups_of(conn, batch_id):
                    raise NotFound(f"job group {job_group_id} of batch {batch_id} not found")
                await store.mark_group_cancelled(conn, batch_id, job_group_id)
        if job_group_id == ROOT_JOB_GROUP_ID:
            await self._append([cancel_requested(batch, reason, stamp)])
        else:
            await self._append([group_cancel_requested(batch, job_group_id, stamp)])

    async def delete(self, user: str, batch_id: int) -> None:
        stamp = self._stamp()
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            await store.mark_cancelled(conn, batch_id, deleted=True)
        await self._append([cancel_requested(batch, "delete", stamp), batch_deleted(batch, stamp)])


async def _check_parents_in_log(conn: Any, batch_id: int, jobs: list[JobRequest], field: str = "bunch") -> None:
    """Every absolute parent must be a job whose JobCreated is in the log, its update committed or
    not (the child then waits for it, as in Hail). A parent only reserved is refused: the resolver
    would not know it, and the child would run before it. Parents in the log stay there, so a
    check passed here stays true when the child's events are appended after it."""
    wanted = {p for j in jobs for p in j.absolute_parent_ids}
    missing = await store.jobs_not_in_log(conn, batch_id, wanted)
    for i, job in enumerate(jobs):
        for k, parent in enumerate(job.absolute_parent_ids):
            if parent in missing:
                raise InvalidRequest(f"{field}[{i}].absolute_parent_ids[{k}]",
                                     f"job {parent} of batch {batch_id} has not been submitted: its update reserved "
                                     "the id but no bunch holding it has arrived; submit the parent's bunch first")


async def _check_billing_project(conn: Any, user: str, billing_project: str) -> None:
    if not await is_member(conn, user, billing_project):
        raise Forbidden(f"unknown billing project {billing_project!r} for user {user!r}; "
                        "use one you are a member of (GET /api/v1alpha/billing_projects)")


async def _check_limit_for_new_update(conn: Any, batch: store.BatchRow, spec: UpdateRequest) -> None:
    """A new update needs the batch's billing project under its limit; a retry of an update already
    reserved (same token) keeps its answer. Checked before reserving, so even a batch the
    billing-limit loop already cancelled gets the 403 that says why, not 'batch is cancelled'."""
    if not await store.update_token_used(conn, batch.batch_id, spec.token):
        await check_under_limit(conn, batch.billing_project)


def _fast_answer(update: store.UpdateRow, **extra: Any) -> dict[str, Any]:
    return {**extra, "update_id": update.update_id, "start_job_group_id": update.start_job_group_id,
            "start_job_id": update.start_job_id}


def _commit_answer(update: store.UpdateRow) -> dict[str, Any]:
    return {"start_job_id": update.start_job_id, "start_job_group_id": update.start_job_group_id}

