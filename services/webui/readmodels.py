"""The UI's reads of the read models (projections/migrations) and the front end's token table.

Every function takes an open async connection whose rows are dicts, and every batch-scoped read
takes the signed-in user: a batch of someone else reads as absent, exactly like the API's 404.
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncConnection, sql

from services.webui.query_language import batch_condition, job_condition

Row = dict[str, Any]
PAGE_SIZE = 50


async def user_for_token(conn: AsyncConnection, token: str) -> str | None:
    """The user a bearer token belongs to (the front end stores sha256 hex digests of tokens)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    cur = await conn.execute("SELECT user_name FROM front_tokens WHERE token_sha256 = %s", (digest,))
    row = await cur.fetchone()
    return None if row is None else row["user_name"]


async def list_batches(conn: AsyncConnection, user: str, q: str = "", last_batch_id: int | None = None,
                       limit: int = PAGE_SIZE) -> tuple[list[Row], int | None]:
    """The user's visible batches, newest first, one page; and the id to continue after (None at the end)."""
    condition, params = batch_condition(q)
    query = sql.SQL("""
        SELECT * FROM batches
        WHERE "user" = %s AND NOT deleted AND ({}) AND (%s::bigint IS NULL OR batch_id < %s::bigint)
        ORDER BY batch_id DESC LIMIT %s""").format(condition)
    cur = await conn.execute(query, [user, *params, last_batch_id, last_batch_id, limit + 1])
    rows = await cur.fetchall()
    return _page(rows, limit, "batch_id")


async def get_batch(conn: AsyncConnection, user: str, batch_id: int) -> Row | None:
    cur = await conn.execute('SELECT * FROM batches WHERE batch_id = %s AND "user" = %s AND NOT deleted',
                             (batch_id, user))
    return await cur.fetchone()


async def list_jobs(conn: AsyncConnection, batch_id: int, q: str = "", last_job_id: int | None = None,
                    limit: int = PAGE_SIZE) -> tuple[list[Row], int | None]:
    """A batch's committed jobs by id, one page (the caller has checked the batch is the user's)."""
    condition, params = job_condition(q)
    query = sql.SQL("""
        SELECT batch_id, job_id, job_group_id, name, state, exit_code, reason, start_time, end_time,
               duration_ms, cost, msec_mcpu, n_attempts, always_run, cores_mcpu, memory_bytes
        FROM jobs
        WHERE batch_id = %s AND committed AND ({}) AND (%s::int IS NULL OR job_id > %s::int)
        ORDER BY job_id LIMIT %s""").format(condition)
    cur = await conn.execute(query, [batch_id, *params, last_job_id, last_job_id, limit + 1])
    rows = await cur.fetchall()
    return _page(rows, limit, "job_id")


async def job_state_counts(conn: AsyncConnection, batch_id: int) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT state, count(*) AS n FROM jobs WHERE batch_id = %s AND committed GROUP BY state", (batch_id,))
    return {row["state"]: row["n"] for row in await cur.fetchall()}


async def get_job(conn: AsyncConnection, batch_id: int, job_id: int) -> Row | None:
    cur = await conn.execute("SELECT * FROM jobs WHERE batch_id = %s AND job_id = %s AND committed",
                             (batch_id, job_id))
    return await cur.fetchone()


async def list_attempts(conn: AsyncConnection, batch_id: int, job_id: int) -> list[Row]:
    """Attempts in the order they were scheduled (an unscheduled one, if any, last)."""
    cur = await conn.execute("""
        SELECT * FROM attempts WHERE batch_id = %s AND job_id = %s
        ORDER BY scheduled_at NULLS LAST, start_time NULLS LAST, attempt_id""", (batch_id, job_id))
    return await cur.fetchall()


async def audit_trail(conn: AsyncConnection, batch_id: int, job_id: int) -> list[Row]:
    """The job's events in log order (one partition holds a batch, so offsets order them)."""
    cur = await conn.execute("""
        SELECT topic, "partition", "offset", event_type, event_id, occurred_at, causation_id, producer, attempt_id
        FROM audit WHERE batch_id = %s AND job_id = %s
        ORDER BY occurred_at, topic, "partition", "offset" """, (batch_id, job_id))
    return await cur.fetchall()


async def scheduling_explanation(conn: AsyncConnection, batch_id: int, job_id: int) -> Row | None:
    cur = await conn.execute(
        "SELECT reason_code, message, updated_at FROM scheduling_explanations WHERE batch_id = %s AND job_id = %s",
        (batch_id, job_id))
    return await cur.fetchone()


# Cores in use on an instance: attempts placed there that have not ended.
_INSTANCE_USAGE = """
    SELECT i.*, coalesce(u.used_mcpu, 0) AS used_mcpu, coalesce(u.n_running, 0) AS n_running
    FROM instances i
    LEFT JOIN (SELECT instance_name, sum(cores_mcpu) AS used_mcpu, count(*) AS n_running
               FROM attempts WHERE end_time IS NULL AND outcome IS NULL GROUP BY instance_name) u
      ON u.instance_name = i.name
"""


async def list_instances(conn: AsyncConnection, include_deleted: bool = False) -> list[Row]:
    where = "" if include_deleted else "WHERE i.state <> 'deleted'"
    cur = await conn.execute(f"{_INSTANCE_USAGE} {where} ORDER BY i.pool NULLS LAST, i.name")
    rows = await cur.fetchall()
    for row in rows:
        row["utilisation"] = _ratio(row["used_mcpu"], row["cores_mcpu"])
    return rows


def summarise_pools(instances: list[Row]) -> list[Row]:
    """Per pool: instances by state, and cores, memory and utilisation over its active instances."""
    pools: dict[str, Row] = {}
    for inst in instances:
        name = inst["pool"] or "(job-private)"
        pool = pools.setdefault(name, {"pool": name, "states": {}, "cores_mcpu": 0, "used_mcpu": 0,
                                       "memory_bytes": 0, "n_running": 0})
        pool["states"][inst["state"]] = pool["states"].get(inst["state"], 0) + 1
        if inst["state"] == "active":
            pool["cores_mcpu"] += inst["cores_mcpu"] or 0
            pool["memory_bytes"] += inst["memory_bytes"] or 0
            pool["used_mcpu"] += inst["used_mcpu"]
            pool["n_running"] += inst["n_running"]
    for pool in pools.values():
        pool["utilisation"] = _ratio(pool["used_mcpu"], pool["cores_mcpu"])
    return sorted(pools.values(), key=lambda p: p["pool"])


def _ratio(used: int, total: int | None) -> float | None:
    return None if not total else used / total


def _page(rows: list[Row], limit: int, key: str) -> tuple[list[Row], int | None]:
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1][key]
    return rows, None
