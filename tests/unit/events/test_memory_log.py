"""Behaviour of the in-memory fake beyond the shared contract: rebalances, waiting reads, clock."""

from __future__ import annotations

import asyncio

import pytest

from events.errors import LogError
from events.log import Message
from events.memory_log import MemoryEventLog
from events.topics import TopicSpec


async def _log(partitions: int = 6, clock=lambda: 1_000) -> MemoryEventLog:
    log = MemoryEventLog(clock=clock)
    await log.create_topics([TopicSpec("t", partitions)])
    return log


async def test_record_timestamps_come_from_the_injected_clock() -> None:
    log = await _log(clock=lambda: 1_764_000_000_123)
    await log.append([Message("t", b"x", key=b"k")])
    [position] = await log.append([Message("t", b"y", key=b"k")])
    records = await log.read("t", position.partition, 0)
    assert [r.timestamp_ms for r in records] == [1_764_000_000_123] * 2


async def test_a_waiting_read_wakes_up_when_a_record_arrives() -> None:
    log = await _log(partitions=1)
    reader = asyncio.create_task(log.read("t", 0, 0, timeout_ms=5_000))
    await asyncio.sleep(0.01)
    await log.append([Message("t", b"late")])
    assert [r.value for r in await asyncio.wait_for(reader, 1)] == [b"late"]


async def test_unkeyed_messages_spread_over_partitions() -> None:
    log = await _log(partitions=3)
    positions = await log.append([Message("t", b"x") for _ in range(6)])
    assert sorted(p.partition for p in positions) == [0, 0, 1, 1, 2, 2]


async def test_members_share_partitions_and_a_leaver_s_uncommitted_records_are_redelivered() -> None:
    log = await _log(partitions=6)
    await log.append([Message("t", str(i).encode(), key=str(i).encode()) for i in range(60)])
    a, b, c = [await log.group_consumer("g", ["t"]) for _ in range(3)]
    assert [len(m.assignment()) for m in (a, b, c)] == [2, 2, 2]
    assert a.assignment() | b.assignment() | c.assignment() == {("t", p) for p in range(6)}

    got_c = await c.getmany(timeout_ms=0)
    ends = await log.end_offsets("t")
    await a.commit({(t, p): ends[p] for t, p in a.assignment()})  # a stored everything it owns
    await c.close()  # c read its records but never committed them
    # The rebalance moves c's partitions to a and b, which restart from the committed offsets.
    redelivered = await a.getmany(timeout_ms=0) + await b.getmany(timeout_ms=0)
    assert got_c and {r.value for r in got_c} <= {r.value for r in redelivered}
    assert len(a.assignment()) == len(b.assignment()) == 3


async def test_commit_of_a_partition_owned_by_another_member_is_refused() -> None:
    log = await _log(partitions=2)
    a = await log.group_consumer("g", ["t"])
    b = await log.group_consumer("g", ["t"])
    [(topic, partition)] = b.assignment()
    with pytest.raises(LogError, match="not assigned"):
        await a.commit({(topic, partition): 1})
    await b.commit({(topic, partition): 1})
    assert log.committed("g") == {(topic, partition): 1}


async def test_a_closed_log_refuses_appends_and_ends_waiting_reads() -> None:
    log = await _log(partitions=1)
    reader = asyncio.create_task(log.read("t", 0, 0, timeout_ms=5_000))
    await asyncio.sleep(0.01)
    await log.close()
    assert await asyncio.wait_for(reader, 1) == []
    with pytest.raises(LogError, match="closed"):
        await log.append([Message("t", b"x")])


async def test_reading_a_missing_topic_or_partition_names_it() -> None:
    log = await _log(partitions=1)
    with pytest.raises(LogError, match="'nope' does not exist"):
        await log.read("nope", 0, 0)
    with pytest.raises(LogError, match="no partition 3"):
        await log.read("t", 3, 0)


async def test_readers_timing_out_and_cancelled_never_block_appends() -> None:
    # an asyncio.Condition-based wait lost track of its lock here (Python 3.11, wait_for timing out
    # as the reader was notified or cancelled): readers failed with "Lock is not acquired" and,
    # under load, every later append blocked for good (seen in the 50-job worker test)
    log = MemoryEventLog()
    await log.create_topics([TopicSpec("t", 2)])

    async def reader(p: int) -> None:
        offset = 0
        while True:
            records = await log.read("t", p % 2, offset, timeout_ms=1)
            if records:
                offset = records[-1].offset + 1

    async def cancelled_reads() -> None:
        while True:
            t = asyncio.create_task(log.read("t", 0, 10**9, timeout_ms=50))
            await asyncio.sleep(0.001)
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)

    tasks = [asyncio.create_task(reader(i)) for i in range(10)] + [asyncio.create_task(cancelled_reads())
                                                                  for _ in range(3)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.5
    appended = 0
    while loop.time() < deadline:
        await asyncio.wait_for(log.append([Message("t", b"v", b"k")]), 5)
        appended += 1
        await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert appended > 100
    assert all(isinstance(r, asyncio.CancelledError) for r in results), [r for r in results if r is not None]


async def test_a_read_cancelled_as_its_record_arrives_is_cancelled() -> None:
    # a cancellation must not be lost to the wake-up it races with (3.11's asyncio.wait_for loses it,
    # and a consumer loop cancelled then would never end)
    log = await _log(1)
    reader = asyncio.create_task(log.read("t", 0, 0, timeout_ms=10_000))
    await asyncio.sleep(0)  # the read is waiting now
    await log.append([Message("t", b"v")])
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader, 2)
