"""A real uvicorn front end on a free loopback port, in a thread with its own event loop.

Used by the tests that drive it over real HTTP (the unmodified Hail client, the squall CLI).
It runs over a memory log, the given GCS-API server (squall's bucket created in it) and, when
asked, the read-model projection folding that log into the test database, so reads reflect what
the front appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid

import uvicorn
from psycopg_pool import AsyncConnectionPool

from events.memory_log import MemoryEventLog
from events.objectstore.gcs import GcsObjectStore
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.service import run_readmodel
from projections.runner import RunnerSettings
from services.front.asgi_app import create_app
from services.front.front_deps import FrontDeps
from services.front.job_files import FileAccess
from services.front.specs import SpecRules
from services.jobdata import AgentLogs, JobData


class LiveFront:
    def __init__(self, database_url: str, topics: Topics, storage_endpoint: str, *, project: bool = True) -> None:
        self.database_url = database_url
        self.topics = topics
        self.storage_endpoint = storage_endpoint
        self.system_bucket = f"squall-{uuid.uuid4().hex[:12]}"  # squall's own bucket, unique to this front
        self.project = project
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._ready = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> LiveFront:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the front end did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)

    async def _main(self) -> None:
        try:
            log = MemoryEventLog()
            await log.create_topics(self.topics.specs())
            pool = AsyncConnectionPool(self.database_url, min_size=1, max_size=4, open=False)
            await pool.open(wait=True)
            store = GcsObjectStore(endpoint=self.storage_endpoint, retry_deadline_s=5)
            await store.create_bucket(self.system_bucket)
            job_data = JobData(store, self.system_bucket, AgentLogs(store, self.system_bucket))
            deps = FrontDeps(pool=pool, publisher=Publisher(log, self.topics), job_data=job_data,
                             file_access=FileAccess(self.system_bucket), rules=SpecRules(supported_regions=("local",)))
            config = uvicorn.Config(create_app(deps), log_level="warning", lifespan="off")
            self._server = uvicorn.Server(config)
            stop = asyncio.Event()
            projection = (asyncio.create_task(run_readmodel(
                log, self.topics, self.database_url, settings=RunnerSettings(read_timeout_ms=50, idle_sleep_s=0.02), stop=stop))
                if self.project else None)
            self._ready.set()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            stop.set()
            if projection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(projection, 10)
            await job_data.close()
            await store.close()
            await pool.close()
            await log.close()
