"""The read side: batches, job groups, jobs and attempts from the read-model tables.

Ownership and visibility come from the front's own `front_batches` (a user sees only their
batches, deleted ones never); counters and job rows come from the projections' tables
(projections/migrations), which may lag the log by a moment.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.front import store
from services.front.errors import NotFound
from services.front.queries import batch_condition, job_condition
from services.front.query import Condition
from services.front.shapes import attempt_entry, batch_status, job_entry, job_group_status

PAGE_SIZE: Final = 50

_BATCH_SELECT: Final = (
    "SELECT f.batch_id, f.user_name, f.billing_project, f.token, f.attributes, f.time_created, f.cancelled, "
    "f.n_committed_jobs, b.n_completed, b.n_succeeded, b.n_failed, b.n_cancelled, b.cancelled AS b_cancelled, "
    "b.time_closed, b.time_completed, b.msec_mcpu, b.cost, b.cost_breakdown "
    "FROM front_batches f LEFT JOIN batches b ON b.batch_id = f.batch_id ")


class Reads:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def batch(self, user: str, batch_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_BATCH_SELECT + "WHERE f.batch_id = %s AND f.user_name = %s AND NOT f.deleted",
                              (batch_id, user))
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"batch {batch_id} not found")
        return batch_status(row)

    async def batches(self, user: str, q: str, last_batch_id: int | None, limit: int,
                      version: int = 1) -> dict[str, Any]:
        """`q` in query language `version` (1: Hail's legacy one, 2: its current one)."""
        cond = batch_condition(q, version)
        cond.add("f.user_name = {u} AND NOT f.deleted", False, u=user)
        if last_batch_id is not None:
            cond.add("f.batch_id < {last}", False, last=last_batch_id)
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_BATCH_SELECT + f"WHERE {cond.where()} ORDER BY f.batch_id DESC LIMIT {int(limit)}",
                              cond.params)
            rows = await cur.fetchall()
        answer: dict[str, Any] = {"batches": [batch_status(r) for r in rows]}
        if len(rows) == limit:
            answer["last_batch_id"] = rows[-1]["batch_id"]
        return answer

    async def jobs(self, user: str, batch_id: int, job_group_id: int, q: str, last_job_id: int | None,
                   recursive: bool, version: int = 1) -> dict[str, Any]:
        cond = job_condition(q, version)
        async with self.pool.connection() as conn:
            await store.batch_for_user(conn, batch_id, user)
            groups = await _group_ids(conn, batch_id, job_group_id, recursive)
            cond.add("j.batch_id = {b} AND j.committed AND j.job_group_id = ANY({g})", False, b=batch_id, g=groups)
            if last_job_id is not None:
                cond.add("j.job_id > {last}", False, last=last_job_id)
            rows = await _fetch(conn, f"SELECT j.* FROM jobs j WHERE {cond.where()} ORDER BY j.job_id "
                                      f"LIMIT {PAGE_SIZE}", cond)
        answer: dict[str, Any] = {"jobs": [job_entry(r) for r in rows]}
        answer["last_job_id"] = rows[-1]["job_id"] if len(rows) == PAGE_SIZE else None
        return answer

    async def job_group(self, user: str, batch_id: int, job_group_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            batch = await store.batch_for_user(conn, batch_id, user)
            groups = await store.groups_of(conn, batch_id)
            if job_group_id not in groups:
                raise NotFound(f"job group {job_group_id} of batch {batch_id} not found")
            rows = await _fetch(conn, "SELECT * FROM job_groups WHERE batch_id = %(b)s AND job_group_id = %(g)s",
                                Condition(params={"b": batch_id, "g": job_group_id}))
        return job_group_status(batch_id, job_group_id, rows[0] if rows else None,
                                _group_cancelled(groups, job_group_id), batch.time_created)

    async def child_job_groups(self, user: str, batch_id: int, job_group_id: int,
                               last_job_group_id: int | None) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            batch = await store.batch_for_user(conn, batch_id, user)
            groups = await store.groups_of(conn, batch_id)
            if job_group_id not in groups:
                raise NotFound(f"job group {job_group_id} of batch {batch_id} not found")
            children = sorted(g for g, row in groups.items() if row.parent_job_group_id == job_group_id
                              and (last_job_group_id is None or g > last_job_group_id))[:PAGE_SIZE]
            rows = await _fetch(conn, "SELECT * FROM job_groups WHERE batch_id = %(b)s AND job_group_id = ANY(%(g)s)",
                                Condition(params={"b": batch_id, "g": children}))
        by_id = {r["job_group_id"]: r for r in rows}
        answer: dict[str, Any] = {"job_groups": [
            job_group_status(batch_id, g, by_id.get(g), _group_cancelled(groups, g), batch.time_created)
            for g in children]}
        answer["last_job_group_id"] = children[-1] if len(children) == PAGE_SIZE else None
        return answer

    async def job_row(self, user: str, batch_id: int, job_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            await store.batch_for_user(conn, batch_id, user)
            rows = await _fetch(conn, "SELECT * FROM jobs WHERE batch_id = %(b)s AND job_id = %(j)s AND committed",
                                Condition(params={"b": batch_id, "j": job_id}))
        if not rows:
            raise NotFound(f"job {batch_id}/{job_id} not found")
        return rows[0]

    async def attempts(self, user: str, batch_id: int, job_id: int) -> list[dict[str, Any]] | None:
        await self.job_row(user, batch_id, job_id)
        async with self.pool.connection() as conn:
            rows = await _fetch(conn, "SELECT * FROM attempts WHERE batch_id = %(b)s AND job_id = %(j)s "
                                      "ORDER BY coalesce(scheduled_at, start_time), attempt_id",
                                Condition(params={"b": batch_id, "j": job_id}))
        return [attempt_entry(r) for r in rows] or None

    async def attempt_ids(self, batch_id: int, job_id: int) -> list[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT attempt_id FROM attempts WHERE batch_id = %s AND job_id = %s",
                                     (batch_id, job_id))
            return [r[0] for r in await cur.fetchall()]

    async def audit(self, user: str, batch_id: int, job_id: int) -> list[dict[str, Any]]:
        await self.job_row(user, batch_id, job_id)
        async with self.pool.connection() as conn:
            rows = await _fetch(conn, 'SELECT topic, "partition", "offset", event_type, event_id, occurred_at, '
                                      "causation_id, producer, attempt_id FROM audit "
                                      "WHERE batch_id = %(b)s AND job_id = %(j)s "
                                      'ORDER BY topic, "partition", "offset"',
                                Condition(params={"b": batch_id, "j": job_id}))
        return rows

    async def explanation(self, batch_id: int, job_id: int) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            rows = await _fetch(conn, "SELECT reason_code, message, updated_at FROM scheduling_explanations "
                                      "WHERE batch_id = %(b)s AND job_id = %(j)s",
                                Condition(params={"b": batch_id, "j": job_id}))
        return rows[0] if rows else None

    async def pool_decision(self, pool: str) -> dict[str, Any] | None:
        """The autoscaler's latest decision for a pool (the read model's pool_decisions)."""
        async with self.pool.connection() as conn:
            rows = await _fetch(conn, 'SELECT pool, occurred_at, decision FROM pool_decisions WHERE pool = %(p)s '
                                      'ORDER BY occurred_at DESC, "offset" DESC LIMIT 1', Condition(params={"p": pool}))
        return rows[0] if rows else None

    async def parent_states(self, batch_id: int, parent_ids: list[int]) -> dict[int, str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT job_id, state FROM jobs WHERE batch_id = %s AND job_id = ANY(%s)",
                                     (batch_id, parent_ids))
            return {r[0]: r[1] for r in await cur.fetchall()}


async def _fetch(conn: AsyncConnection, sql: str, cond: Condition) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, cond.params)  # type: ignore[arg-type]
    return await cur.fetchall()


async def _group_ids(conn: AsyncConnection, batch_id: int, job_group_id: int, recursive: bool) -> list[int]:
    groups = await store.groups_of(conn, batch_id)
    if job_group_id not in groups:
        raise NotFound(f"job group {job_group_id} of batch {batch_id} not found")
    selected = {job_group_id}
    if recursive:
        grew = True
        while grew:  # depth is at most 2, so this runs at most three times
            more = {g for g, row in groups.items() if row.parent_job_group_id in selected} - selected
            selected |= more
            grew = bool(more)
    return sorted(selected)


def _group_cancelled(groups: dict[int, store.GroupRow], job_group_id: int) -> bool:
    """A group counts as cancelled when it or any ancestor is."""
    current: int | None = job_group_id
    while current is not None:
        row = groups[current]
        if row.cancelled:
            return True
        current = row.parent_job_group_id
    return False
