"""The front end test harness: an in-process app over a log and a fresh database, with two users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from psycopg_pool import AsyncConnectionPool

from events.codec import Codec
from events.log import EventLog
from events.objectstore import ObjectStore
from events.publisher import Publisher
from events.topics import Topics
from services.front.asgi_app import create_app
from services.front.front_deps import FrontDeps
from services.front.job_files import FileAccess
from services.front.specs import SpecRules
from services.front.startup import apply_migrations
from services.front.users import create_user
from services.jobdata import AgentLogs, JobData


@dataclass
class Front:
    client: httpx.AsyncClient
    pool: AsyncConnectionPool
    log: EventLog
    topics: Topics
    deps: FrontDeps
    alice: dict[str, str]
    bob: dict[str, str]
    store: ObjectStore
    system_bucket: str  # squall's own bucket in the store, unique to the test

    async def events(self) -> list:
        """Every event on the batch topic, decoded, in partition/offset order."""
        codec = Codec()
        out = []
        for partition in range(await self.log.partitions(self.topics.batch)):
            for record in await self.log.read(self.topics.batch, partition, 0, timeout_ms=100):
                out.append(codec.decode(record.value))
        return out

    async def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []


class FixedClock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


async def make_front(db_url: str, log: EventLog, topics: Topics, store: ObjectStore,
                     system_bucket: str, rules: SpecRules | None = None) -> AsyncIterator[Front]:
    await asyncio.to_thread(apply_migrations, db_url)
    await store.create_bucket(system_bucket)
    pool = AsyncConnectionPool(db_url, min_size=1, max_size=8, open=False)
    await pool.open(wait=True)
    async with pool.connection() as conn:
        alice = await create_user(conn, "alice", "alice-project")
        bob = await create_user(conn, "bob")
    job_data = JobData(store, system_bucket, AgentLogs(store, system_bucket))
    deps = FrontDeps(pool=pool, publisher=Publisher(log, topics), job_data=job_data,
                     file_access=FileAccess(system_bucket),
                     rules=rules or SpecRules(supported_regions=("local", "us-central1")),
                     clock=FixedClock(), producer="front/test")
    app = create_app(deps)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://front",
                                 headers={"Authorization": f"Bearer {alice.token}"}) as client:
        try:
            yield Front(client=client, pool=pool, log=log, topics=topics, deps=deps,
                        alice={"Authorization": f"Bearer {alice.token}"},
                        bob={"Authorization": f"Bearer {bob.token}"}, store=store,
                        system_bucket=system_bucket)
        finally:
            await job_data.close()
            await pool.close()
