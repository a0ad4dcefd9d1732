"""Bearer-token authentication: `Authorization: Bearer <token>` → user name, or 401."""

from __future__ import annotations

import time

from psycopg_pool import AsyncConnectionPool

from services.front.errors import Unauthorized
from services.front.users import user_for_token

CACHE_SECONDS = 10.0  # as Hail's gear caches userinfo: a revoked token stops working within this


class TokenCache:
    def __init__(self, pool: AsyncConnectionPool, ttl_s: float = CACHE_SECONDS) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[str, float]] = {}

    async def user(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("malformed Authorization header; send 'Authorization: Bearer <token>'")
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self.pool.connection() as conn:
            user = await user_for_token(conn, token)
        if user is None:
            raise Unauthorized("unknown token; create one with `squall user create NAME`")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (user, now + self.ttl_s)
        return user
