"""Write "why is this job not scheduled" to Postgres (`scheduling_explanations`), off the hot path.

A cycle may leave thousands of jobs unplaced with the same reason as last time, so only changes
are written: a job whose reason code changed is upserted, a job that got placed is deleted. The
writes happen in a background task so a slow database never slows scheduling; if the writer
falls behind, newer state simply overwrites the pending one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import psycopg

from events.core.explain import Explanation
from projections.db import READMODEL_MIGRATIONS, migrate
from projections.scheduling.model import JobKey

log = logging.getLogger(__name__)

_UPSERT = """
INSERT INTO scheduling_explanations (batch_id, job_id, reason_code, message, updated_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (batch_id, job_id) DO UPDATE
SET reason_code = EXCLUDED.reason_code, message = EXCLUDED.message, updated_at = EXCLUDED.updated_at
"""
_DELETE = "DELETE FROM scheduling_explanations WHERE batch_id = %s AND job_id = %s"


class ExplanationWriter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._written: dict[JobKey, str] = {}  # what the table says now: job -> reason code
        self._pending_upserts: dict[JobKey, tuple[str, str, int]] = {}
        self._pending_deletes: set[JobKey] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing = False
        self.n_writes = 0

    async def start(self) -> None:
        # The read-model migrations own the table. Applying them here (idempotent, under their advisory
        # lock) means the scheduler may start before the read-model service without a divergent DDL.
        await asyncio.to_thread(migrate, self._url, [READMODEL_MIGRATIONS])
        self._task = asyncio.create_task(self._run())

    def record(self, explanations: Iterable[Explanation], placed: Iterable[JobKey], now_ms: int) -> None:
        for e in explanations:
            key = (e.batch_id, e.job_id)
            if self._written.get(key) != e.reason.value or key in self._pending_deletes:
                self._pending_deletes.discard(key)
                self._pending_upserts[key] = (e.reason.value, e.message, now_ms)
        for key in placed:
            self._pending_upserts.pop(key, None)
            if key in self._written:
                self._pending_deletes.add(key)
        if self._pending_upserts or self._pending_deletes:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            upserts, self._pending_upserts = self._pending_upserts, {}
            deletes, self._pending_deletes = self._pending_deletes, set()
            self._writing = True
            try:
                await self._write(upserts, deletes)
            except psycopg.Error as exc:  # keep scheduling; the next change retries the whole picture
                log.warning("writing %d scheduling explanations failed: %s", len(upserts) + len(deletes), exc)
                for key, value in upserts.items():
                    self._pending_upserts.setdefault(key, value)
                self._pending_deletes |= deletes - set(self._pending_upserts)
                await asyncio.sleep(1.0)
                self._wake.set()
            finally:
                self._writing = False

    async def _write(self, upserts: dict[JobKey, tuple[str, str, int]], deletes: set[JobKey]) -> None:
        async with await psycopg.AsyncConnection.connect(self._url) as conn:
            async with conn.cursor() as cur:
                if upserts:
                    await cur.executemany(_UPSERT, [(b, j, code, msg, at) for (b, j), (code, msg, at) in upserts.items()])
                if deletes:
                    await cur.executemany(_DELETE, list(deletes))
            await conn.commit()
        for key, (code, _, _) in upserts.items():
            self._written[key] = code
        for key in deletes:
            self._written.pop(key, None)
        self.n_writes += len(upserts) + len(deletes)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything recorded so far is written (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._pending_upserts or self._pending_deletes or self._wake.is_set() or self._writing) and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
