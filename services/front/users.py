"""Users, bearer tokens (stored as sha256 digests; listed, revoked and expiring) and billing-project membership."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from services.front.billing import billing_projects
from services.front.errors import InvalidRequest, NotFound

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_text() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CreatedUser:
    name: str
    token: str
    billing_project: str


async def create_user(conn: AsyncConnection, name: str, billing_project: str | None = None,
                      now_ms: int | None = None, operator: bool = False,
                      expires_at_ms: int | None = None) -> CreatedUser:
    """Create the user (or add a token to an existing one) and make it a member of the billing project.

    The billing project defaults to the user's name; `operator` makes the user an operator (never
    takes it away from one); the token stops working at `expires_at_ms` (None: never). Returns the
    new token, shown once.
    """
    for field, value in (("name", name), ("billing_project", billing_project or name)):
        if not _NAME.match(value):
            raise InvalidRequest(field, f"{value!r} must be lowercase letters, digits, '-' or '_', starting "
                                        "with a letter, at most 63 characters")
    project = billing_project or name
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    token = new_token_text()
    async with conn.transaction():
        await conn.execute("INSERT INTO front_users (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           (name, now))
        if operator:
            await make_operator(conn, name)
        await conn.execute("INSERT INTO front_tokens (token_sha256, user_name, created_at, expires_at) "
                           "VALUES (%s, %s, %s, %s)", (token_digest(token), name, now, expires_at_ms))
        await conn.execute(
            "INSERT INTO front_billing_projects (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (project, now))
        await conn.execute("INSERT INTO front_billing_project_members (billing_project, user_name) "
                           "VALUES (%s, %s) ON CONFLICT DO NOTHING", (project, name))
    return CreatedUser(name=name, token=token, billing_project=project)


# Now, by the database's clock: every front end and UI process judges expiry by the same clock.
_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


async def user_for_token(conn: AsyncConnection, token: str) -> str | None:
    """The user the token authenticates; None for an unknown, revoked or expired token."""
    cur = await conn.execute(
        "SELECT user_name FROM front_tokens WHERE token_sha256 = %s AND revoked_at IS NULL "
        f"AND (expires_at IS NULL OR expires_at > {_NOW_MS})", (token_digest(token),))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str  # the start of the token's digest: names it, cannot be used as it
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    status: str  # active, expired or revoked


async def new_token(conn: AsyncConnection, name: str, expires_at_ms: int | None = None,
                    now_ms: int | None = None) -> str:
    """Another token for an existing user (NotFound when there is no such user); shown once."""
    if not await _user_exists(conn, name):
        raise NotFound(f"no user {name!r}; create it with `squall user create {name}`")
    token = new_token_text()
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    await conn.execute("INSERT INTO front_tokens (token_sha256, user_name, created_at, expires_at) "
                       "VALUES (%s, %s, %s, %s)", (token_digest(token), name, now, expires_at_ms))
    return token


async def list_tokens(conn: AsyncConnection, name: str) -> list[TokenInfo]:
    """The user's tokens, oldest first, with their status now (NotFound when there is no such user)."""
    if not await _user_exists(conn, name):
        raise NotFound(f"no user {name!r}")
    cur = await conn.execute(
        "SELECT token_id, created_at, expires_at, revoked_at, CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
        f"WHEN expires_at IS NOT NULL AND expires_at <= {_NOW_MS} THEN 'expired' ELSE 'active' END "
        "FROM front_tokens WHERE user_name = %s ORDER BY created_at, token_id", (name,))
    return [TokenInfo(str(t), int(c), e, r, str(s)) for t, c, e, r, s in await cur.fetchall()]


async def revoke_token(conn: AsyncConnection, name: str, token_id: str, now_ms: int | None = None) -> bool:
    """Revoke the user's token `token_id` (True), or find it already revoked (False); NotFound when the
    user has no such token. It stops authenticating at the next request, in the API and the UI."""
    cur = await conn.execute("SELECT revoked_at FROM front_tokens WHERE user_name = %s AND token_id = %s",
                             (name, token_id))
    rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"user {name!r} has no token {token_id!r}; see `squall user tokens {name}`")
    if len(rows) > 1:  # two tokens whose digests start alike: vanishingly rare, refuse to guess
        raise InvalidRequest("TOKEN_ID", f"{token_id!r} names more than one token of {name!r}")
    if rows[0][0] is not None:
        return False
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    await conn.execute("UPDATE front_tokens SET revoked_at = %s WHERE user_name = %s AND token_id = %s",
                       (now, name, token_id))
    return True


async def _user_exists(conn: AsyncConnection, name: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM front_users WHERE name = %s", (name,))
    return await cur.fetchone() is not None


async def make_operator(conn: Any, user: str) -> None:
    await conn.execute("UPDATE front_users SET is_operator = true WHERE name = %s", (user,))


async def is_operator(conn: Any, user: str) -> bool:
    cur = await conn.execute("SELECT is_operator FROM front_users WHERE name = %s", (user,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def is_member(conn: Any, user: str, billing_project: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM front_billing_project_members WHERE billing_project = %s "
                             "AND user_name = %s", (billing_project, user))
    return await cur.fetchone() is not None


async def billing_projects_of(conn: AsyncConnection, user: str) -> list[dict[str, Any]]:
    """Hail's billing-project shape for every project the user belongs to (every project for an
    operator, as Hail shows developers), with its real limit and accrued cost (services/front/billing.py)."""
    return await billing_projects(conn, None if await is_operator(conn, user) else user)
