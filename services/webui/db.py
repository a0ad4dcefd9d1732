"""A connection pool to the read models that opens on first use.

Opening lazily matters because the UI is usually mounted inside the front end's app, and Starlette
does not run a mounted app's lifespan: the pool must not depend on a start-up hook. Whoever owns
the process calls `close()` at shutdown (the UI's own lifespan does when it runs standalone).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


class ReadModelPool:
    def __init__(self, database_url: str, max_size: int = 4) -> None:
        self._database_url = database_url
        self._max_size = max_size
        self._pool: AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    async def _opened(self) -> AsyncConnectionPool:
        async with self._lock:
            if self._pool is None:
                # autocommit: every page is a handful of independent reads; no transaction held open
                pool = AsyncConnectionPool(self._database_url, min_size=1, max_size=self._max_size, open=False,
                                           kwargs={"autocommit": True})
                await pool.open(wait=True, timeout=10)
                self._pool = pool
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        pool = await self._opened()
        async with pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        async with self._lock:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
