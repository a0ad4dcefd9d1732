"""The resolver loop on the in-memory log (the same log semantics as Kafka, see tests/contract)."""

from __future__ import annotations

import asyncio
import contextlib

from events.log import EventLog
from events.topics import Topics
from projections.resolver.service import Resolver, ResolverSettings
from tests.unit.resolver.resolver_scenario import Scenario, assert_nothing_duplicated_in_effect

FAST = ResolverSettings(poll_timeout_ms=20)


class InProcessResolver:
    """Runs Resolver as a task; `restart` drops it (its unappended work is lost) and starts a new one."""

    def __init__(self, log: EventLog, topics: Topics) -> None:
        self.log, self.topics = log, topics
        self.generation = 0
        self.task: asyncio.Task[None] | None = None
        self.stop_event = asyncio.Event()
        self.resolvers: list[Resolver] = []

    def start(self) -> None:
        self.generation += 1
        resolver = Resolver(self.log, self.topics, f"resolver/{self.generation}", FAST)
        self.resolvers.append(resolver)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(resolver.run(self.stop_event))

    async def stop(self) -> None:
        assert self.task is not None
        # cancel = a crash at whatever await it is in; the event only backs it up, because
        # asyncio.wait_for on 3.11 can swallow a cancellation (MemoryEventLog's reads use it)
        self.stop_event.set()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def restart(self) -> None:
        await self.stop()
        self.start()


async def test_a_dag_batch_runs_through_restarts_with_nothing_duplicated_in_effect(memory_log, topics):
    resolver = InProcessResolver(memory_log, topics)
    resolver.start()
    try:
        scenario = Scenario(memory_log, topics, resolver.restart, timeout_s=20)
        batch_log = await scenario.run()
    finally:
        await resolver.stop()
    assert_nothing_duplicated_in_effect(batch_log, await scenario.assignments())
    assert len(resolver.resolvers) == 4 and sum(r.records_processed for r in resolver.resolvers) > 0
