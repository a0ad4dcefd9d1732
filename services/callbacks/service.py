"""The callback loop: a consumer-group member over the batch topic.

Per iteration: fetch records; note the batches where something completed (JobCompleted,
JobCancelled, BatchCompleted: the only events that can complete a group); wait until the read
model has folded past those records (its offsets are in projection_offsets), so the status posted
is the one the API would return; fire every callback then due in those batches; commit. A crash
before the commit re-reads the records, and `callback_deliveries` keeps a completion from being
fired twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from events.codec import Codec
from events.errors import DecodeError
from events.log import EventLog, GroupConsumer, Record
from events.process import metrics
from events.topics import Topics
from services.callback_policy import CallbackPolicy, CallbackRefused, Resolver
from services.callbacks import deliveries
from services.callbacks.deliveries import DueCallback
from services.front.errors import NotFound
from services.front.reads import Reads

log = logging.getLogger(__name__)

TRIGGERS = frozenset({"JobCompleted", "JobCancelled", "BatchCompleted"})


@dataclass(frozen=True)
class CallbackSettings:
    poll_timeout_ms: int = 200
    max_records: int = 5_000
    request_timeout_s: float = 10.0
    attempts: int = 3  # a receiver that is unreachable or answers 5xx gets this many tries
    retry_delay_s: float = 1.0
    concurrency: int = 16  # callbacks in flight at once, so one slow receiver does not hold up the rest
    readmodel_poll_s: float = 0.1
    policy: CallbackPolicy = CallbackPolicy()  # where callbacks may go (checked again at each delivery)


def group_id(topics: Topics) -> str:
    return f"{topics.prefix}callbacks"


def completions(records: Sequence[Record], codec: Codec) -> tuple[set[int], dict[int, int]]:
    """The batches in which something completed, and per partition the offset the read model must
    reach before their state can be read. Other events are skipped undecoded."""
    batch_ids: set[int] = set()
    until: dict[int, int] = {}
    for record in records:
        if codec.event_name_of(record.value) not in TRIGGERS:
            continue
        try:
            event = codec.decode(record.value)
        except DecodeError:
            continue  # the read model quarantines it; nothing completes through it
        batch_ids.add(event.batch_id)  # type: ignore[union-attr]
        until[record.partition] = max(until.get(record.partition, 0), record.offset + 1)
    return batch_ids, until


class CallbackService:
    """Run with `await CallbackService(log, topics, database_url).run(stop)`."""

    def __init__(self, log_: EventLog, topics: Topics, database_url: str, settings: CallbackSettings | None = None,
                 client: httpx.AsyncClient | None = None, now_ms: Callable[[], int] | None = None,
                 resolver: Resolver | None = None) -> None:
        self.log = log_
        self.topics = topics
        self.settings = settings or CallbackSettings()
        self.pool = AsyncConnectionPool(database_url, open=False, kwargs={"autocommit": True})
        self.reads = Reads(self.pool)
        # no redirects: a 3xx to an internal address must not bypass the policy
        self.client = client or httpx.AsyncClient(timeout=self.settings.request_timeout_s, follow_redirects=False,
                                                  headers={"User-Agent": "squall-callbacks"})
        self.resolver = resolver
        self.codec = Codec()
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._limit = asyncio.Semaphore(self.settings.concurrency)
        self.since_ms = 0  # completions before the service first ran are history (set by run)

    async def run(self, stop: asyncio.Event) -> None:
        await self.pool.open()
        async with self.pool.connection() as conn:
            self.since_ms = await deliveries.enabled_since(conn, self.now_ms())
        consumer = await self.log.group_consumer(group_id(self.topics), [self.topics.batch])
        try:
            while not stop.is_set():
                await self.iterate(consumer, stop)
        finally:
            await consumer.close()
            await self.pool.close()
            await self.client.aclose()

    async def iterate(self, consumer: GroupConsumer, stop: asyncio.Event) -> None:
        records = await consumer.getmany(timeout_ms=self.settings.poll_timeout_ms,
                                         max_records=self.settings.max_records)
        if not records:
            return
        batch_ids, until = completions(records, self.codec)
        if batch_ids:
            if not await self._wait_for_readmodel(until, stop):
                return  # stopping: commit nothing, the next owner reads these records again
            await self.fire_due(batch_ids)
        offsets: dict[tuple[str, int], int] = {}
        for r in records:
            offsets[(r.topic, r.partition)] = max(offsets.get((r.topic, r.partition), 0), r.offset + 1)
        await consumer.commit(offsets)

    async def _wait_for_readmodel(self, until: dict[int, int], stop: asyncio.Event) -> bool:
        waited_since = time.monotonic()
        warned = 0.0
        while not stop.is_set():
            async with self.pool.connection() as conn:
                folded = await deliveries.readmodel_offsets(conn, self.topics.batch)
            behind = {p: o for p, o in until.items() if folded.get(p, 0) < o}
            if not behind:
                return True
            waited = time.monotonic() - waited_since
            if waited - warned >= 30:
                warned = waited
                log.warning("waited %.0fs for the read model to fold %s (partition: offset)", waited, behind)
            await asyncio.sleep(self.settings.readmodel_poll_s)
        return False

    async def fire_due(self, batch_ids: set[int]) -> None:
        async with self.pool.connection() as conn:
            due = await deliveries.due(conn, batch_ids, self.since_ms)
        await asyncio.gather(*(self._fire(c) for c in due))

    async def _fire(self, c: DueCallback) -> None:
        async with self._limit:
            # one pooled connection at a time: the status read takes its own, so holding the claim's
            # across it would let `concurrency` callbacks starve a smaller pool
            async with self.pool.connection() as conn:
                if not await deliveries.claim(conn, c, self.now_ms()):
                    return
            try:
                body = await self._status(c)
            except NotFound as exc:  # deleted since it completed
                async with self.pool.connection() as conn:
                    await deliveries.record(conn, c, self.now_ms(), None, f"not sent: {exc}")
                return
            status_code, error = await self._post(c.url, body)
            outcome = "delivered" if status_code is not None and status_code < 300 else \
                "rejected" if status_code is not None else "failed"
            metrics.count_callback(outcome)
            log.info("callback of batch %d group %d to %s: %s", c.batch_id, c.job_group_id, c.url,
                     status_code if error is None else error)
            async with self.pool.connection() as conn:
                await deliveries.record(conn, c, self.now_ms(), status_code, error)

    async def _status(self, c: DueCallback) -> dict[str, Any]:
        """The body Hail posts: the batch's (or group's) status JSON, as the API returns it."""
        if c.job_group_id == 0:
            return await self.reads.batch(c.user, c.batch_id)
        return await self.reads.job_group(c.user, c.batch_id, c.job_group_id)

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int | None, str | None]:
        status_code: int | None = None
        error: str | None = None
        for attempt in range(1, self.settings.attempts + 1):
            try:
                # resolved and checked right before each try, then connected to that very address: a
                # name that now resolves to an internal address (DNS rebinding) is refused here
                target, headers, extensions = await self.settings.policy.resolve_for_delivery(url, self.resolver)
                answer = await self.client.post(target, json=body, headers=headers, extensions=extensions)
                status_code, error = answer.status_code, None
                if answer.status_code < 500:
                    break
                error = f"the receiver answered {answer.status_code}"
            except CallbackRefused as exc:  # the user's URL or where it points: trying again won't help
                return None, f"not sent: {exc}"
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                return None, f"not sent: not a usable http(s) URL: {exc}"
            except OSError as exc:  # the name does not resolve (now)
                status_code, error = None, f"{url[:100]} could not be resolved: {exc}"
            except httpx.HTTPError as exc:
                status_code, error = None, f"{type(exc).__name__}: {exc}"
            if attempt < self.settings.attempts:
                await asyncio.sleep(self.settings.retry_delay_s * attempt)
        if error is None and status_code is not None and status_code >= 300:
            error = f"the receiver answered {status_code}"
        return status_code, error
