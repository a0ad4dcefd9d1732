"""`POST /batches/{id}/rerun-failed`: one new update with a copy of every job that ended Failed,
Error or Cancelled (and was not re-run before), through the front's ordinary update path.

The update's events are exactly an update-fast's (BatchUpdateCreated, JobCreated*,
BatchUpdateCommitted), so the resolver, the read models and Hail's counters treat it as any
update: the batch gains n_jobs, is no longer complete until the copies finish, and keeps the
counts of the jobs that failed before (Hail never un-counts a failure, so a batch with a failure
stays `failure` after a successful re-run; each copy's own state shows how the re-run went).

Which jobs ended comes from the read model; which jobs were already re-run, from the front's
`front_reruns` (old id -> copy), written in the transaction that holds the batch row across the
append, as `Submissions.commit` does: a failed append leaves nothing reserved, and a retry with the
same `token` returns the first answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from events.catalog import Event
from events.errors import LogError
from events.publisher import Publisher
from services.front import store
from services.front.billing import check_under_limit
from services.front.errors import Conflict, InvalidRequest, Unavailable
from services.front.plan import Stamp, plan_jobs, update_committed, update_created
from services.front.rerun_plan import RERUN_STATES, EndedJob, RerunPlan, plan_rerun
from services.front.specs import SpecRules, UpdateRequest, parse_job

TOKEN_PREFIX = "rerun-failed-"


class Reruns:
    def __init__(self, pool: AsyncConnectionPool, publisher: Publisher, clock: Callable[[], int], producer: str,
                 rules: SpecRules) -> None:
        self.pool = pool
        self.publisher = publisher
        self.clock = clock
        self.producer = producer
        self.rules = rules

    async def rerun_failed(self, user: str, batch_id: int, token: str | None) -> dict[str, Any]:
        """The update that re-runs the batch's failed jobs: `{update_id, start_job_id, n_jobs, job_ids: {old: new}}`."""
        stamp = Stamp(producer=self.producer, occurred_at=self.clock())
        async with self.pool.connection() as conn, conn.transaction():
            batch = await store.batch_for_user(conn, batch_id, user, lock=True)
            if token is not None and await store.update_token_used(conn, batch_id, token):
                return await _earlier_answer(conn, batch_id, token)
            if batch.cancelled or await _cancelled_in_read_model(conn, batch_id):
                raise Conflict(f"batch {batch_id} is cancelled: a cancelled batch accepts no updates, so its "
                               "jobs cannot be re-run; submit a new batch")
            plan = plan_rerun(await _ended_jobs(conn, batch_id), await copies_so_far(conn, batch_id),
                              await _cancelled_groups(conn, batch_id))
            if not plan.copies:
                raise Conflict(_nothing_to_rerun(batch_id, plan))
            jobs = [parse_job(f"job {c.old_job_id} (re-run)", c.spec, self.rules) for c in plan.copies]
            spec = UpdateRequest(token or _derived_token(plan), len(jobs), 0)
            await check_under_limit(conn, batch.billing_project)
            update = await store.reserve_update(conn, batch, spec, stamp.occurred_at)
            copies = plan_jobs(update, batch, jobs, stamp, field="rerun", pools=self.rules.pools)
            events: list[Event] = [update_created(update, stamp), *copies, update_committed(update, stamp)]
            try:
                await self.publisher.publish(events)
            except LogError as exc:
                raise Unavailable(f"the event log did not accept the re-run ({exc}); retry it") from exc
            await store.record_job_range(conn, update, 1, len(jobs))
            await store.mark_committed(conn, update, stamp.occurred_at)
            mapping = {c.old_job_id: update.start_job_id + i for i, c in enumerate(plan.copies)}
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO front_reruns (batch_id, update_id, old_job_id, new_job_id) VALUES (%s, %s, %s, %s)",
                    [(batch_id, update.update_id, old, new) for old, new in mapping.items()])
        return _answer(batch_id, update.update_id, update.start_job_id, mapping, plan.skipped)


async def _ended_jobs(conn: AsyncConnection, batch_id: int) -> list[EndedJob]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT j.job_id, j.parent_ids, j.job_group_id, j.spec FROM jobs j "
        "WHERE j.batch_id = %s AND j.committed AND j.state = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM front_reruns r WHERE r.batch_id = j.batch_id AND r.old_job_id = j.job_id) ORDER BY j.job_id",
        (batch_id, list(RERUN_STATES)))
    return [EndedJob(r["job_id"], tuple(r["parent_ids"]), r["job_group_id"], r["spec"] or {})
            for r in await cur.fetchall()]


async def copies_so_far(conn: AsyncConnection, batch_id: int) -> dict[int, int]:
    cur = await conn.execute("SELECT old_job_id, new_job_id FROM front_reruns WHERE batch_id = %s", (batch_id,))
    return {old: new for old, new in await cur.fetchall()}


async def _cancelled_in_read_model(conn: AsyncConnection, batch_id: int) -> bool:
    """cancel_after_n_failures cancels a batch in the log (the resolver), not in the front's row."""
    cur = await conn.execute("SELECT cancelled FROM batches WHERE batch_id = %s", (batch_id,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _cancelled_groups(conn: AsyncConnection, batch_id: int) -> set[int]:
    """Groups cancelled by a user (front) or by cancel_after_n_failures (read model), with their descendants."""
    cancelled = {g for g, row in (await store.groups_of(conn, batch_id)).items() if row.cancelled}
    cur = await conn.execute(
        "SELECT g.job_group_id FROM job_groups g WHERE g.batch_id = %(b)s AND EXISTS (SELECT 1 FROM job_groups a "
        "WHERE a.batch_id = %(b)s AND a.job_group_id = ANY(g.ancestor_ids) AND a.cancelled)", {"b": batch_id})
    return cancelled | {r[0] for r in await cur.fetchall()}


async def _earlier_answer(conn: AsyncConnection, batch_id: int, token: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT update_id, start_job_id FROM front_updates WHERE batch_id = %s AND token = %s",
                      (batch_id, token))
    update = await cur.fetchone()
    assert update is not None  # update_token_used said so, under the batch row's lock
    await cur.execute("SELECT old_job_id, new_job_id FROM front_reruns WHERE batch_id = %s AND update_id = %s "
                      "ORDER BY new_job_id", (batch_id, update["update_id"]))
    mapping = {r["old_job_id"]: r["new_job_id"] for r in await cur.fetchall()}
    if not mapping:
        raise InvalidRequest("token", f"{token!r} was already used for update {update['update_id']}, which is not "
                                      "a re-run; use a new token")
    return _answer(batch_id, update["update_id"], update["start_job_id"], mapping, ())


def _answer(batch_id: int, update_id: int, start_job_id: int, mapping: dict[int, int],
            skipped: tuple[int, ...]) -> dict[str, Any]:
    return {"batch_id": batch_id, "update_id": update_id, "start_job_id": start_job_id, "n_jobs": len(mapping),
            "job_ids": {str(old): new for old, new in sorted(mapping.items())},
            "skipped_job_ids": list(skipped)}


def _derived_token(plan: RerunPlan) -> str:
    """The same jobs give the same token, hence the same events, if a crash after the append makes a
    caller retry; a caller that may retry after a lost answer sends its own token."""
    ids = ",".join(str(c.old_job_id) for c in plan.copies)
    return TOKEN_PREFIX + hashlib.sha256(ids.encode()).hexdigest()[:32]


def _nothing_to_rerun(batch_id: int, plan: RerunPlan) -> str:
    message = f"batch {batch_id} has no jobs to re-run: none ended Failed, Error or Cancelled since its last re-run"
    if plan.skipped:
        shown = ", ".join(str(j) for j in plan.skipped[:10]) + (", ..." if len(plan.skipped) > 10 else "")
        message += f" outside cancelled job groups (jobs {shown} are in cancelled groups)"
    return message
