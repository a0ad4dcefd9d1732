"""Users, bearer tokens (stored as sha256 digests) and billing-project membership."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from services.front.billing import billing_projects
from services.front.errors import InvalidRequest

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CreatedUser:
    name: str
    token: str
    billing_project: str


async def create_user(conn: AsyncConnection, name: str, billing_project: str | None = None,
                      now_ms: int | None = None, operator: bool = False) -> CreatedUser:
    """Create the user (or add a token to an existing one) and make it a member of the billing project.

    The billing project defaults to the user's name; `operator` makes the user an operator (never
    takes it away from one). Returns the new token, shown once.
    """
    for field, value in (("name", name), ("billing_project", billing_project or name)):
        if not _NAME.match(value):
            raise InvalidRequest(field, f"{value!r} must be lowercase letters, digits, '-' or '_', starting "
                                        "with a letter, at most 63 characters")
    project = billing_project or name
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    token = new_token()
    async with conn.transaction():
        await conn.execute("INSERT INTO front_users (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           (name, now))
        if operator:
            await make_operator(conn, name)
        await conn.execute("INSERT INTO front_tokens (token_sha256, user_name, created_at) VALUES (%s, %s, %s)",
                           (token_digest(token), name, now))
        await conn.execute(
            "INSERT INTO front_billing_projects (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (project, now))
        await conn.execute("INSERT INTO front_billing_project_members (billing_project, user_name) "
                           "VALUES (%s, %s) ON CONFLICT DO NOTHING", (project, name))
    return CreatedUser(name=name, token=token, billing_project=project)


async def user_for_token(conn: AsyncConnection, token: str) -> str | None:
    cur = await conn.execute("SELECT user_name FROM front_tokens WHERE token_sha256 = %s", (token_digest(token),))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


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
