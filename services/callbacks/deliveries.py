"""What the callback service reads and writes in PostgreSQL.

Which groups are due comes from the read model (`job_groups`: a batch is its root group 0, and
every group row carries its callback), so a completion is only announced once the read model
shows it; `callback_deliveries` remembers what was fired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection

from projections.db import READMODEL_MIGRATIONS, migrate
from projections.readmodel.projection import NAME as READMODEL
from services.front.startup import FRONT_MIGRATIONS

MIGRATIONS = Path(__file__).with_name("migrations")


def apply_migrations(database_url: str) -> list[str]:
    """Its own table, and the read model's and front's that it reads."""
    return migrate(database_url, [READMODEL_MIGRATIONS, FRONT_MIGRATIONS, MIGRATIONS])


@dataclass(frozen=True, slots=True)
class DueCallback:
    batch_id: int
    job_group_id: int  # 0: the batch itself
    n_jobs: int
    url: str
    user: str


async def readmodel_offsets(conn: AsyncConnection, topic: str) -> dict[int, int]:
    """How far the read model has folded each partition of `topic` (next offset to fold)."""
    cur = await conn.execute("SELECT partition, next_offset FROM projection_offsets "
                             "WHERE projection = %s AND topic = %s", (READMODEL, topic))
    return {int(p): int(o) for p, o in await cur.fetchall()}


async def enabled_since(conn: AsyncConnection, now_ms: int) -> int:
    """When callbacks were first fired from this database (now, the first time it is asked)."""
    await conn.execute("INSERT INTO callbacks_enabled (since) VALUES (%s) ON CONFLICT DO NOTHING", (now_ms,))
    cur = await conn.execute("SELECT since FROM callbacks_enabled")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def due(conn: AsyncConnection, batch_ids: Iterable[int], since_ms: int) -> list[DueCallback]:
    """Complete groups (with jobs) of these batches whose callback has not been fired for this
    completion, completed since `since_ms` (earlier ones are history, see 002_callbacks_enabled.sql)."""
    cur = await conn.execute(
        "SELECT g.batch_id, g.job_group_id, g.n_jobs, g.callback, f.user_name FROM job_groups g "
        "JOIN front_batches f ON f.batch_id = g.batch_id "
        "WHERE g.batch_id = ANY(%s) AND g.callback IS NOT NULL AND g.state = 'complete' AND NOT f.deleted "
        "AND g.n_jobs > 0 AND g.time_completed >= %s "
        "AND NOT EXISTS (SELECT 1 FROM callback_deliveries d WHERE d.batch_id = g.batch_id "
        "                AND d.job_group_id = g.job_group_id AND d.n_jobs = g.n_jobs) "
        "ORDER BY g.batch_id, g.job_group_id", (sorted(set(batch_ids)), since_ms))
    return [DueCallback(int(b), int(g), int(n), str(url), str(user)) for b, g, n, url, user in await cur.fetchall()]


async def claim(conn: AsyncConnection, c: DueCallback, now_ms: int) -> bool:
    """Record that this completion's callback is being fired; False if another process got there first."""
    cur = await conn.execute(
        "INSERT INTO callback_deliveries (batch_id, job_group_id, n_jobs, url, claimed_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (c.batch_id, c.job_group_id, c.n_jobs, c.url, now_ms))
    return await cur.fetchone() is not None


async def record(conn: AsyncConnection, c: DueCallback, now_ms: int, status_code: int | None,
                 error: str | None) -> None:
    await conn.execute(
        "UPDATE callback_deliveries SET finished_at = %s, status_code = %s, error = %s "
        "WHERE batch_id = %s AND job_group_id = %s AND n_jobs = %s",
        (now_ms, status_code, error, c.batch_id, c.job_group_id, c.n_jobs))
