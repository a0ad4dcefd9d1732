"""The resolver loop on the in-memory log (the same log semantics as Kafka, see tests/contract)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from events.codec import Codec
from events.log import EventLog
from events.publisher import Publisher
from events.topics import Topics
from projections.resolver.service import Resolver, ResolverSettings
from tests.unit.resolver.resolver_scenario import Scenario, assert_nothing_duplicated_in_effect

FAST = ResolverSettings(poll_timeout_ms=20)
CODEC = Codec()


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


class ReadFailsOnce:
    """The memory log, except that the n-th partition read raises once (a broker gone mid-rebuild)."""

    def __init__(self, log: EventLog, fail_on_read: int) -> None:
        self._log = log
        self._reads_left = fail_on_read

    def __getattr__(self, name: str):  # everything else: the real log
        return getattr(self._log, name)

    async def read(self, *args, **kwargs):
        self._reads_left -= 1
        if self._reads_left == 0:
            raise ConnectionError("broker went away")
        return await self._log.read(*args, **kwargs)


async def test_a_rebuild_cut_off_half_way_is_dropped_and_redone_from_offset_0(memory_log, topics):
    from events.log import partition_for
    from projections.resolver.core import ResolverCore
    from tests.unit.core.lifecycle_world import BATCH, Builder

    b = Builder()
    await Publisher(memory_log, topics).publish([b.batch(), *b.dag({1: (), 2: (), 3: (1, 2)}),
                                                 b.sj(1, "a1"), b.sj(2, "a2"), b.mjc(1, "a1"), b.mjc(2, "a2")])
    tp = (topics.batch, partition_for(str(BATCH).encode(), await memory_log.partitions(topics.batch)))
    end = (await memory_log.end_offsets(topics.batch))[tp[1]]
    expected = ResolverCore("resolver/test").rebuild(tp, await memory_log.read(*tp, 0, max_records=100))

    flaky = ReadFailsOnce(memory_log, fail_on_read=2)
    resolver = Resolver(flaky, topics, "resolver/test", ResolverSettings(poll_timeout_ms=20, rebuild_chunk=3))  # type: ignore[arg-type]
    consumer = await memory_log.group_consumer("g", [topics.batch])
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=20, max_records=1)
        with pytest.raises(ConnectionError):
            await resolver.iterate(consumer)
        assert tp not in resolver.core.partitions, "a half-folded partition must not stay owned"
        await resolver.iterate(consumer)  # owns it again: a whole rebuild, then its derived events
    finally:
        await consumer.close()
    assert resolver.core.partitions[tp].next_offset >= end
    appended = await memory_log.read(*tp, end, max_records=100)
    assert [CODEC.decode(r.value).event_id for r in appended] == [e.event_id for e in expected]
    assert expected, "the whole fold derives something (job completions), so the comparison means something"


class RecordsAppends:
    """The memory log, recording the topics of each append call in order."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.calls: list[set[str]] = []

    def __getattr__(self, name: str):  # everything else: the real log
        return getattr(self._log, name)

    async def append(self, messages):  # type: ignore[no-untyped-def]
        self.calls.append({m.topic for m in messages})
        return await self._log.append(messages)


async def test_the_verdict_is_stored_before_the_assignment_is_appended(memory_log, topics):
    """A worker acts on AttemptAssigned; what it reports must land after the verdict accepting its
    attempt, so the batch topic's append completes before the assignments' starts."""
    from events.log import partition_for
    from tests.unit.core.lifecycle_world import BATCH, Builder

    b = Builder()
    await Publisher(memory_log, topics).publish([b.batch(), *b.dag({1: ()})])
    recording = RecordsAppends(memory_log)
    resolver = Resolver(recording, topics, "resolver/test", FAST)  # type: ignore[arg-type]
    consumer = await memory_log.group_consumer("g", [topics.batch])
    try:
        await resolver.iterate(consumer)  # rebuilds: JobBecameReady
        await Publisher(memory_log, topics).publish([b.sj(1, "a1")])
        recording.calls.clear()
        while topics.assignment not in set().union(*recording.calls):
            await resolver.iterate(consumer)
    finally:
        await consumer.close()
    assert recording.calls == [{topics.batch}, {topics.assignment}]
    partition = partition_for(str(BATCH).encode(), await memory_log.partitions(topics.batch))
    batch_log = [CODEC.decode(r.value) for r in await memory_log.read(topics.batch, partition, 0, max_records=100)]
    assert batch_log[-1].SCHEMA_NAME == "JobAttemptAccepted"
