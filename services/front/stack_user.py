"""The local stack's one user, made by `squall up`: it exists, is an operator (the one user of a
local stack runs it, so it sees the fleet too) and is granted the stack's data bucket.

`deploy/stack.py` sits below the services (the `squall` CLI imports it), so it cannot reach the
front's tables itself; `squall up` hands it `ensure_stack_user` (deploy.stack.StackUser).
"""

from __future__ import annotations

import asyncio

import psycopg

from services.front import buckets
from services.front.users import create_user, make_operator, user_for_token


def ensure_stack_user(database_url: str, token: str, *, user: str, billing_project: str, bucket: str,
                      system_bucket: str) -> str:
    """Returns a token that works for `user`: the old one if it still does, so `squall up` twice
    keeps the token users already copied."""

    async def ensure() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            if token and await user_for_token(conn, token) == user:  # not revoked, not expired
                await make_operator(conn, user)  # a stack made before operators existed
                working = token
            else:
                working = (await create_user(conn, user, billing_project=billing_project, operator=True)).token
            await buckets.grant(conn, bucket, user=user, system_bucket=system_bucket)  # the user exists by now
            return working

    return asyncio.run(ensure())
