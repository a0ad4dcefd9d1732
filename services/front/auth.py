"""Bearer-token authentication: `Authorization: Bearer <token>` → user name, or 401.

Every request looks its token up (one indexed read): a revoked or expired token gets 401 from its
next request on, with no cache to outlive the revocation.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from services.front.errors import Unauthorized
from services.front.users import user_for_token


class TokenAuth:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def user(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("malformed Authorization header; send 'Authorization: Bearer <token>'")
        async with self.pool.connection() as conn:
            user = await user_for_token(conn, token)
        if user is None:
            raise Unauthorized("unknown, revoked or expired token; an operator issues one with "
                               "`squall user new-token NAME` (`squall user tokens NAME` lists them)")
        return user
