"""The UI's reads of the read models (projections/migrations) and of the front end's own tables.

Every function takes an open async connection and returns rows as dicts. Batch visibility and the
query languages are the front end's (services/front: front_batches, queries.py, users.py), so the UI
shows exactly what the API would; a batch of someone else reads as absent, like the API's 404.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from services.front.queries import CURRENT_QUERY_VERSION, batch_condition, job_condition
from services.front.users import is_operator, user_for_token

__all__ = ["user_for_token", "is_operator", "list_batches", "get_batch", "list_jobs", "job_state_counts", "get_job",
           "list_attempts", "audit_trail", "scheduling_explanation", "list_instances", "summarise_pools"]

Row = dict[str, Any]
PAGE_SIZE = 50

# Visibility comes from the front end's own table, as in the API (deleted batches never show);
# counters come from the read model. A batch the projection has not reached yet is not listed.
# The cancel flag is the front's (set at once) or the projection's, whichever knows first.
_BATCH_SELECT = """
    SELECT b.*, (b.cancelled OR f.cancelled) AS cancelled_any
    FROM front_batches f JOIN batches b ON b.batch_id = f.batch_id
"""


async def _rows(conn: AsyncConnection, query: str, params: Any = None) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)  # type: ignore[arg-type]  # composed at run time from fixed fragments
    return await cur.fetchall()


async def _row(conn: AsyncConnection, query: str, params: Any = None) -> Row | None:
    rows = await _rows(conn, query, params)
    return rows[0] if rows else None


def _batch_row(row: Row) -> Row:
    row["cancelled"] = row.pop("cancelled_any")
    return row


# A job re-run by POST /batches/{id}/rerun-failed (the front's front_reruns): its copy, or its original.
_RERUN_COLUMNS = """
    (SELECT r.old_job_id FROM front_reruns r WHERE r.batch_id = j.batch_id AND r.new_job_id = j.job_id) AS rerun_of,
    (SELECT r.new_job_id FROM front_reruns r WHERE r.batch_id = j.batch_id AND r.old_job_id = j.job_id) AS rerun_as
"""


# The retried attempts of a job, oldest first, each with what its words need (present.retry_words).
_RETRIES_COLUMN = """
    (SELECT jsonb_agg(jsonb_build_object('attempt_id', a.attempt_id, 'retry', a.retry, 'exit_code', a.exit_code,
                                         'memory_bytes', a.memory_bytes)
                      ORDER BY a.scheduled_at NULLS LAST, a.start_time NULLS LAST, a.attempt_id)
     FROM attempts a WHERE a.batch_id = j.batch_id AND a.job_id = j.job_id AND a.retry IS NOT NULL) AS retries
"""


# The name of a job's group (None for the root group and unnamed groups): the batch page's Group column.
_GROUP_NAME = """
    (SELECT coalesce(g.attributes->>'name', 'group ' || g.job_group_id) FROM job_groups g
     WHERE g.batch_id = j.batch_id AND g.job_group_id = j.job_group_id AND j.job_group_id <> 0) AS group_name
"""


async def list_batches(conn: AsyncConnection, user: str, q: str = "", last_batch_id: int | None = None,
                       limit: int = PAGE_SIZE, version: int = CURRENT_QUERY_VERSION) -> tuple[list[Row], int | None]:
    """The user's visible batches, newest first, one page; and the id to continue after (None at the end).

    `q` is in Hail's query language `version` (1 or 2), parsed by the front end's parsers
    (InvalidRequest names a bad term).
    """
    cond = batch_condition(q, version)
    cond.add("f.user_name = {u} AND NOT f.deleted", False, u=user)
    if last_batch_id is not None:
        cond.add("f.batch_id < {last}", False, last=last_batch_id)
    rows = await _rows(conn, f"{_BATCH_SELECT} WHERE {cond.where()} ORDER BY f.batch_id DESC LIMIT {int(limit) + 1}",
                       cond.params)
    return _page([_batch_row(r) for r in rows], limit, "batch_id")


async def get_batch(conn: AsyncConnection, user: str, batch_id: int) -> Row | None:
    row = await _row(conn, f"{_BATCH_SELECT} WHERE f.batch_id = %s AND f.user_name = %s AND NOT f.deleted",
                     (batch_id, user))
    return None if row is None else _batch_row(row)


async def list_jobs(conn: AsyncConnection, batch_id: int, q: str = "", last_job_id: int | None = None,
                    limit: int = PAGE_SIZE, version: int = CURRENT_QUERY_VERSION,
                    job_group_id: int | None = None) -> tuple[list[Row], int | None]:
    """A batch's committed jobs by id, one page (the caller has checked the batch is the user's); with
    `job_group_id`, only the jobs of that group itself (not of its sub-groups)."""
    cond = job_condition(q, version)
    cond.add("j.batch_id = {b} AND j.committed", False, b=batch_id)
    if job_group_id is not None:
        cond.add("j.job_group_id = {g}", False, g=job_group_id)
    if last_job_id is not None:
        cond.add("j.job_id > {last}", False, last=last_job_id)
    rows = await _rows(conn, f"""
        SELECT j.batch_id, j.job_id, j.job_group_id, j.name, j.state, j.exit_code, j.reason, j.start_time,
               j.end_time, j.duration_ms, j.cost, j.msec_mcpu, j.n_attempts, j.always_run, j.cores_mcpu,
               j.memory_bytes, {_RERUN_COLUMNS}, {_RETRIES_COLUMN}, {_GROUP_NAME}
        FROM jobs j WHERE {cond.where()} ORDER BY j.job_id LIMIT {int(limit) + 1}""", cond.params)
    return _page(rows, limit, "job_id")


async def job_state_counts(conn: AsyncConnection, batch_id: int) -> dict[str, int]:
    rows = await _rows(conn, "SELECT state, count(*) AS n FROM jobs WHERE batch_id = %s AND committed GROUP BY state",
                       (batch_id,))
    return {row["state"]: row["n"] for row in rows}


async def get_job(conn: AsyncConnection, batch_id: int, job_id: int) -> Row | None:
    return await _row(conn, f"SELECT j.*, {_RERUN_COLUMNS} FROM jobs j "
                            "WHERE j.batch_id = %s AND j.job_id = %s AND j.committed", (batch_id, job_id))


async def list_attempts(conn: AsyncConnection, batch_id: int, job_id: int) -> list[Row]:
    """Attempts in the order they were scheduled (an unscheduled one, if any, last)."""
    return await _rows(conn, """
        SELECT a.*, i.preemptible AS instance_preemptible
        FROM attempts a LEFT JOIN instances i ON i.name = a.instance_name
        WHERE a.batch_id = %s AND a.job_id = %s
        ORDER BY a.scheduled_at NULLS LAST, a.start_time NULLS LAST, a.attempt_id""", (batch_id, job_id))


async def audit_trail(conn: AsyncConnection, batch_id: int, job_id: int) -> list[Row]:
    """The job's events in log order (one partition holds a batch, so offsets order them)."""
    return await _rows(conn, """
        SELECT topic, "partition", "offset", event_type, event_id, occurred_at, causation_id, producer, attempt_id
        FROM audit WHERE batch_id = %s AND job_id = %s
        ORDER BY occurred_at, topic, "partition", "offset" """, (batch_id, job_id))


async def scheduling_explanation(conn: AsyncConnection, batch_id: int, job_id: int) -> Row | None:
    return await _row(
        conn, "SELECT reason_code, message, updated_at FROM scheduling_explanations WHERE batch_id = %s AND job_id = %s",
        (batch_id, job_id))


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
    rows = await _rows(conn, f"{_INSTANCE_USAGE} {where} ORDER BY i.pool NULLS LAST, i.name")
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
