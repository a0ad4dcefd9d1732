"""The front end's own tables (services/front/migrations): batch ids, tokens, update bookkeeping.

Each function takes an open psycopg connection inside the caller's transaction, so a request's
checks and reservations are atomic. Appending events happens outside these transactions.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.front.errors import Conflict, InvalidRequest, NotFound
from services.front.rows import BatchRow, GroupRow, UpdateRow
from services.front.specs import ROOT_JOB_GROUP_ID, BatchRequest, UpdateRequest
from services.front.update_plan import next_update


async def insert_batch(conn: AsyncConnection, user: str, spec: BatchRequest, now_ms: int) -> tuple[BatchRow, bool]:
    """The batch for (user, token): created now, or the one a previous try created (False)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "INSERT INTO front_batches (user_name, billing_project, token, attributes, time_created, retry_policy) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_name, token) DO NOTHING RETURNING *",
        (user, spec.billing_project, spec.token, Jsonb(spec.attributes), now_ms,
         None if spec.retry_policy is None else Jsonb(spec.retry_policy)))
    row = await cur.fetchone()
    if row is not None:
        await conn.execute(
            "INSERT INTO front_job_groups (batch_id, job_group_id, depth) VALUES (%s, %s, 0)",
            (row["batch_id"], ROOT_JOB_GROUP_ID))
        return BatchRow(**row), True
    await cur.execute("SELECT * FROM front_batches WHERE user_name = %s AND token = %s FOR UPDATE",
                      (user, spec.token))
    existing = await cur.fetchone()
    assert existing is not None  # the conflicting row cannot vanish: batches are never removed
    return BatchRow(**existing), False


async def batch_for_user(conn: AsyncConnection, batch_id: int, user: str, *, lock: bool = False,
                         include_deleted: bool = False) -> BatchRow:
    """The caller's batch, or NotFound (also for other users' batches: existence is not leaked).

    Cancelled if a user cancelled it (the front's flag) or the log did on its own: Hail's
    cancel_after_n_failures cancels the root group, which the read model shows, and a batch so
    cancelled refuses updates and commits as one a user cancelled does."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT f.*, COALESCE(b.cancelled, false) AS cancelled_in_log FROM front_batches f "
                      "LEFT JOIN batches b ON b.batch_id = f.batch_id WHERE f.batch_id = %s"
                      + (" FOR UPDATE OF f" if lock else ""), (batch_id,))
    row = await cur.fetchone()
    if row is None or row["user_name"] != user or (row["deleted"] and not include_deleted):
        raise NotFound(f"batch {batch_id} not found")
    cancelled_in_log = row.pop("cancelled_in_log")
    return BatchRow(**{**row, "cancelled": row["cancelled"] or cancelled_in_log})


async def reserve_update(conn: AsyncConnection, batch: BatchRow, spec: UpdateRequest, now_ms: int) -> UpdateRow:
    """Reserve the next update's id blocks (or return the update a previous try reserved).

    `batch` must have been read with lock=True in this transaction, so blocks never overlap.
    """
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM front_updates WHERE batch_id = %s AND token = %s",
                      (batch.batch_id, spec.token))
    existing = await cur.fetchone()
    if existing is not None:
        return _same_update(UpdateRow(**existing), spec)
    update = next_update(batch, spec, now_ms)
    await conn.execute(
        "INSERT INTO front_updates (batch_id, update_id, token, n_jobs, n_job_groups, start_job_id, "
        "start_job_group_id, time_created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (update.batch_id, update.update_id, update.token, update.n_jobs, update.n_job_groups,
         update.start_job_id, update.start_job_group_id, now_ms))
    await conn.execute(
        "UPDATE front_batches SET n_updates = n_updates + 1, n_reserved_jobs = n_reserved_jobs + %s, "
        "n_reserved_job_groups = n_reserved_job_groups + %s WHERE batch_id = %s",
        (spec.n_jobs, spec.n_job_groups, batch.batch_id))
    return update


async def update_token_used(conn: AsyncConnection, batch_id: int, token: str) -> bool:
    """Whether an update of the batch was already reserved with this token (a retry)."""
    cur = await conn.execute("SELECT 1 FROM front_updates WHERE batch_id = %s AND token = %s", (batch_id, token))
    return await cur.fetchone() is not None


def _same_update(update: UpdateRow, spec: UpdateRequest) -> UpdateRow:
    if (update.n_jobs, update.n_job_groups) != (spec.n_jobs, spec.n_job_groups):
        raise Conflict(
            f"update token {spec.token!r} was already used for update {update.update_id} with n_jobs="
            f"{update.n_jobs}, n_job_groups={update.n_job_groups}; use a new token for a different update")
    return update


async def get_update(conn: AsyncConnection, batch_id: int, update_id: int, *, lock: bool = False) -> UpdateRow:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM front_updates WHERE batch_id = %s AND update_id = %s"
                      + (" FOR UPDATE" if lock else ""), (batch_id, update_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"update {update_id} of batch {batch_id} not found")
    return UpdateRow(**row)


async def job_range_state(conn: AsyncConnection, update: UpdateRow, first: int, last: int) -> bool:
    """True if exactly this range was already received (a resend); InvalidRequest if it overlaps another."""
    cur = await conn.execute(
        "SELECT first_job_id, last_job_id FROM front_job_ranges WHERE batch_id = %s AND update_id = %s "
        "AND first_job_id <= %s AND last_job_id >= %s", (update.batch_id, update.update_id, last, first))
    rows = await cur.fetchall()
    if not rows:
        return False
    if rows == [(first, last)]:
        return True
    other_first, other_last = next(r for r in rows if r != (first, last))
    raise InvalidRequest("bunch", f"job ids {first}..{last} overlap ids {other_first}..{other_last} already "
                                  f"received for update {update.update_id}; resend exactly the same bunch or none")


async def record_job_range(conn: AsyncConnection, update: UpdateRow, first: int, last: int) -> None:
    """Record a received bunch (after its events are in the log); a concurrent resend is harmless."""
    await conn.execute("SELECT 1 FROM front_updates WHERE batch_id = %s AND update_id = %s FOR UPDATE",
                       (update.batch_id, update.update_id))
    if await job_range_state(conn, update, first, last):
        return
    await conn.execute(
        "INSERT INTO front_job_ranges (batch_id, update_id, first_job_id, last_job_id) VALUES (%s, %s, %s, %s)",
        (update.batch_id, update.update_id, first, last))


async def jobs_not_in_log(conn: AsyncConnection, batch_id: int, job_ids: set[int]) -> set[int]:
    """Those of `job_ids` (absolute) whose JobCreated is not in the log: reserved by an update whose
    bunch has not arrived, committed or not."""
    if not job_ids:
        return set()
    cur = await conn.execute(
        "SELECT p FROM unnest(%s::bigint[]) AS p WHERE NOT EXISTS ("
        "  SELECT 1 FROM front_job_ranges r JOIN front_updates u USING (batch_id, update_id) "
        "  WHERE r.batch_id = %s AND p BETWEEN u.start_job_id + r.first_job_id - 1 "
        "                              AND u.start_job_id + r.last_job_id - 1)",
        (sorted(job_ids), batch_id))
    return {int(row[0]) for row in await cur.fetchall()}


async def received_counts(conn: AsyncConnection, update: UpdateRow) -> tuple[int, int]:
    """(jobs, job groups) of this update whose events are in the log."""
    cur = await conn.execute(
        "SELECT (SELECT coalesce(sum(last_job_id - first_job_id + 1), 0) FROM front_job_ranges "
        "        WHERE batch_id = %(b)s AND update_id = %(u)s), "
        "       (SELECT count(*) FROM front_job_groups WHERE batch_id = %(b)s AND update_id = %(u)s)",
        {"b": update.batch_id, "u": update.update_id})
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def mark_committed(conn: AsyncConnection, update: UpdateRow, now_ms: int) -> None:
    cur = await conn.execute(
        "UPDATE front_updates SET committed = true, time_committed = %s "
        "WHERE batch_id = %s AND update_id = %s AND NOT committed", (now_ms, update.batch_id, update.update_id))
    if cur.rowcount:
        await conn.execute("UPDATE front_batches SET n_committed_jobs = n_committed_jobs + %s WHERE batch_id = %s",
                           (update.n_jobs, update.batch_id))


async def groups_of(conn: AsyncConnection, batch_id: int) -> dict[int, GroupRow]:
    """The batch's groups; a group is cancelled if a user cancelled it or the log did (its
    cancel_after_n_failures, shown by the read model), as for the batch in `batch_for_user`."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT f.job_group_id, f.parent_job_group_id, f.depth, "
                      "f.cancelled OR COALESCE(g.cancelled, false) AS cancelled FROM front_job_groups f "
                      "LEFT JOIN job_groups g ON g.batch_id = f.batch_id AND g.job_group_id = f.job_group_id "
                      "WHERE f.batch_id = %s", (batch_id,))
    return {r["job_group_id"]: GroupRow(**r) for r in await cur.fetchall()}


async def insert_groups(conn: AsyncConnection, batch_id: int, update_id: int, groups: list[GroupRow]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO front_job_groups (batch_id, job_group_id, update_id, parent_job_group_id, depth) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(batch_id, g.job_group_id, update_id, g.parent_job_group_id, g.depth) for g in groups])


async def mark_cancelled(conn: AsyncConnection, batch_id: int, *, deleted: bool = False) -> None:
    await conn.execute("UPDATE front_batches SET cancelled = true, deleted = deleted OR %s WHERE batch_id = %s",
                       (deleted, batch_id))
    await conn.execute("UPDATE front_job_groups SET cancelled = true WHERE batch_id = %s AND job_group_id = %s",
                       (batch_id, ROOT_JOB_GROUP_ID))


async def mark_group_cancelled(conn: AsyncConnection, batch_id: int, job_group_id: int) -> None:
    """Cancel a group and its descendants (depth is bounded, so two levels cover them)."""
    await conn.execute(
        "UPDATE front_job_groups SET cancelled = true WHERE batch_id = %(b)s AND (job_group_id = %(g)s "
        "OR parent_job_group_id = %(g)s OR parent_job_group_id IN "
        "(SELECT job_group_id FROM front_job_groups WHERE batch_id = %(b)s AND parent_job_group_id = %(g)s))",
        {"b": batch_id, "g": job_group_id})
