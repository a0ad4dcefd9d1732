"""The generic runner over the in-memory log: order, offsets, batching, quarantine and bisection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from events import catalog as ev
from events.log import Message
from events.memory_log import MemoryEventLog
from events.publisher import Publisher
from events.topics import Topics
from projections.runner import (
    OffsetsMoved,
    PartitionChunk,
    PoisonError,
    Projection,
    Runner,
    RunnerSettings,
    TopicPartition,
    same_numbered,
)


class MemoryProjection(Projection):
    """An honest fake: applies chunks atomically to dicts; poison = a BatchDeleted for batch 666."""

    name = "fake"

    def __init__(self, store: dict) -> None:
        self.store = store

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.store["offsets"].get(tp, 0) for tp in partitions}

    async def apply(self, chunks: Sequence[PartitionChunk]) -> None:
        self.store["calls"] += 1
        for chunk in chunks:
            if self.store["offsets"].get((chunk.topic, chunk.partition), 0) != chunk.start_offset:
                raise OffsetsMoved(chunk.topic)
            if any(isinstance(e, ev.BatchDeleted) and e.batch_id == 666 for _, e in chunk.events):
                raise PoisonError("batch 666 is cursed")
        for chunk in chunks:
            for record, event in chunk.events:
                self.store["seen"].setdefault(record.partition, []).append((record.offset, event.batch_id))
            for q in chunk.quarantined:
                self.store["quarantined"].append((q.record.offset, q.reason))
            self.store["offsets"][(chunk.topic, chunk.partition)] = chunk.next_offset

    async def close(self) -> None:
        pass


def deleted(batch_id: int) -> ev.BatchDeleted:
    return ev.BatchDeleted(event_id=f"d{batch_id}", occurred_at=1, producer="t", batch_id=batch_id, user="u")


def new_store() -> dict:
    return {"offsets": {}, "seen": {}, "quarantined": [], "calls": 0}


async def run_to_end(log: MemoryEventLog, topics: Topics, store: dict, **settings: int) -> Runner:
    async def open_projection() -> Projection:
        return MemoryProjection(store)

    runner = Runner(log, [topics.batch], open_projection, topics.quarantine, RunnerSettings(**settings))
    until = {(topics.batch, p): end for p, end in (await log.end_offsets(topics.batch)).items()}
    await runner.run(until=until)
    return runner


async def test_every_partition_in_order_in_batches(memory_log: MemoryEventLog, topics: Topics) -> None:
    await Publisher(memory_log, topics).publish([deleted(b) for b in range(1, 101)])
    store = new_store()
    runner = await run_to_end(memory_log, topics, store, max_batch=7, workers=3)
    assert runner.applied == 100
    assert sorted(b for seen in store["seen"].values() for _, b in seen) == list(range(1, 101))
    for seen in store["seen"].values():
        assert [o for o, _ in seen] == list(range(len(seen)))
    assert store["calls"] >= 100 // 7


async def test_resumes_from_the_stored_offsets(memory_log: MemoryEventLog, topics: Topics) -> None:
    publisher = Publisher(memory_log, topics)
    await publisher.publish([deleted(b) for b in range(1, 21)])
    store = new_store()
    await run_to_end(memory_log, topics, store)
    await publisher.publish([deleted(b) for b in range(21, 31)])
    await run_to_end(memory_log, topics, store)
    assert sorted(b for seen in store["seen"].values() for _, b in seen) == list(range(1, 31))


async def test_poison_is_bisected_quarantined_and_published(memory_log: MemoryEventLog, topics: Topics) -> None:
    await Publisher(memory_log, topics).publish([deleted(b) for b in (1, 2, 666, 4, 5)])
    await memory_log.append([Message(topics.batch, b"\xc3\x01garbage!", key=b"1")])  # does not decode
    store = new_store()
    await run_to_end(memory_log, topics, store, max_batch=100, workers=1)
    applied = sorted(b for seen in store["seen"].values() for _, b in seen)
    assert applied == [1, 2, 4, 5]
    reasons = sorted(reason.split(":")[0] for _, reason in store["quarantined"])
    assert reasons == ["cannot apply", "cannot decode"]
    published = [r for p in range(await memory_log.partitions(topics.quarantine))
                 for r in await memory_log.read(topics.quarantine, p, 0, timeout_ms=10)]
    assert len(published) == 2
    headers = dict(next(r for r in published if b"cursed" in dict(r.headers)["reason"]).headers)
    assert headers["event_type"] == b"BatchDeleted" and headers["source_topic"] == topics.batch.encode()


async def test_a_live_runner_stops_when_told(memory_log: MemoryEventLog, topics: Topics) -> None:
    store = new_store()

    async def open_projection() -> Projection:
        return MemoryProjection(store)

    runner = Runner(memory_log, [topics.batch], open_projection, topics.quarantine, RunnerSettings(idle_sleep_s=0.01))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop=stop))
    await Publisher(memory_log, topics).publish([deleted(b) for b in range(1, 6)])
    for _ in range(200):
        if runner.applied == 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert runner.applied == 5


async def test_a_worker_that_fails_stops_the_other_workers(memory_log: MemoryEventLog, topics: Topics) -> None:
    """The failure propagates and no sibling worker is left running behind the caller's back (it would
    keep writing, e.g. into a schema a failed replay is about to drop)."""
    await Publisher(memory_log, topics).publish([deleted(b) for b in range(1, 41)])
    closed: list[str] = []

    class Failing(MemoryProjection):
        async def apply(self, chunks: Sequence[PartitionChunk]) -> None:
            if self.store["role"] == "fails":
                raise RuntimeError("the database went away")
            await asyncio.sleep(3600)  # the sibling: busy until cancelled

        async def close(self) -> None:
            closed.append(self.store["role"])

    roles = iter(["fails", "blocks"])

    async def open_projection() -> Projection:
        return Failing({**new_store(), "role": next(roles)})

    runner = Runner(memory_log, [topics.batch], open_projection, topics.quarantine, RunnerSettings(workers=2))
    until = {(topics.batch, p): end for p, end in (await memory_log.end_offsets(topics.batch)).items()}
    try:
        await asyncio.wait_for(runner.run(until=until), timeout=30)
        raise AssertionError("run() returned")
    except RuntimeError as exc:
        assert "went away" in str(exc)
    assert sorted(closed) == ["blocks", "fails"]  # the sibling was cancelled and closed, not orphaned


class ShareRecorder(MemoryProjection):
    """Records the partitions its worker was dealt (the runner asks each worker's projection for their offsets)."""

    def __init__(self, store: dict, shares: list[set[TopicPartition]]) -> None:
        super().__init__(store)
        self.shares = shares

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self.shares.append(set(partitions))
        return await super().stored_offsets(partitions)


async def test_co_partitioned_topics_go_to_one_worker(memory_log: MemoryEventLog, topics: Topics) -> None:
    """The instance and heartbeat topics are both keyed by instance name: partition p of each goes to the
    same worker (and shard), or two workers would both insert an instance's read-model row."""
    fold = [topics.batch, topics.instance, topics.heartbeat]  # created by the memory_log fixture
    shares: list[set[TopicPartition]] = []

    async def open_projection() -> Projection:
        return ShareRecorder(new_store(), shares)

    runner = Runner(memory_log, fold, open_projection, topics.quarantine, RunnerSettings(workers=3))
    await runner.run(until={})
    assert len(shares) == 3 and sum(map(len, shares)) == topics.batch_partitions + 2 * topics.instance_partitions
    for p in range(topics.instance_partitions):
        assert [s for s in shares if (topics.instance, p) in s] == [s for s in shares if (topics.heartbeat, p) in s]
    assert [len(g) for g in same_numbered(await runner.partitions())] == [3, 3, 3, 3, 1, 1, 1, 1]
    # a shard (a replay process) gets whole groups too
    assert same_numbered([("b", 0), ("i", 0), ("b", 1), ("i", 1), ("b", 2)])[1::2] == [[("b", 1), ("i", 1)]]
