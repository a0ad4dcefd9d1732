"""Bucket grants: which gs:// buckets a user's jobs may read and write (front_bucket_grants).

A grant names a bucket and either a user or a billing project (every member may use it), as
hailtop's `gcs_bucket_allow_list`. `squall bucket grant|revoke|list` writes and reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from events.objectstore import InvalidObjectName, check_bucket_name
from services.front.errors import InvalidRequest, NotFound


@dataclass(frozen=True, slots=True)
class Grant:
    bucket: str
    user: str | None
    billing_project: str | None
    granted_at: int

    @property
    def grantee(self) -> str:
        return f"user {self.user}" if self.user is not None else f"billing project {self.billing_project}"


def _check(bucket: str, user: str | None, billing_project: str | None) -> None:
    try:
        check_bucket_name(bucket)
    except InvalidObjectName as exc:
        raise InvalidRequest("bucket", str(exc)) from None
    if (user is None) == (billing_project is None):
        raise InvalidRequest("grantee", "name exactly one of a user or a billing project")


async def grant(conn: Any, bucket: str, *, user: str | None = None, billing_project: str | None = None,
                system_bucket: str | None = None, now_ms: int | None = None) -> bool:
    """Grant the bucket; False if that grant existed already."""
    _check(bucket, user, billing_project)
    if bucket == system_bucket:
        raise InvalidRequest("bucket", f"{bucket!r} is squall's own bucket (logs and status); it cannot be granted")
    table, name = ("front_users", user) if user is not None else ("front_billing_projects", billing_project)
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE name = %s", (name,))
    if await cur.fetchone() is None:
        kind = "user" if user is not None else "billing project"
        raise NotFound(f"no {kind} {name!r}")
    cur = await conn.execute(
        "INSERT INTO front_bucket_grants (bucket, user_name, billing_project, granted_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING", (bucket, user, billing_project, now_ms or int(time.time() * 1000)))
    return bool(cur.rowcount)


async def revoke(conn: Any, bucket: str, *, user: str | None = None, billing_project: str | None = None) -> bool:
    """Remove the grant; False if there was none. Jobs already submitted keep running."""
    _check(bucket, user, billing_project)
    cur = await conn.execute(
        "DELETE FROM front_bucket_grants WHERE bucket = %s AND user_name IS NOT DISTINCT FROM %s "
        "AND billing_project IS NOT DISTINCT FROM %s", (bucket, user, billing_project))
    return bool(cur.rowcount)


async def list_grants(conn: Any) -> list[Grant]:
    cur = await conn.execute("SELECT bucket, user_name, billing_project, granted_at FROM front_bucket_grants "
                             "ORDER BY bucket, user_name NULLS LAST, billing_project")
    return [Grant(*row) for row in await cur.fetchall()]


async def granted_buckets(conn: Any, user: str, billing_project: str) -> set[str]:
    """Buckets the user may name in a batch of this billing project."""
    cur = await conn.execute("SELECT bucket FROM front_bucket_grants WHERE user_name = %s OR billing_project = %s",
                             (user, billing_project))
    return {row[0] for row in await cur.fetchall()}
