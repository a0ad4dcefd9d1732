"""One contract for every EventLog backend: the in-memory fake and the real Kafka adapter.

If a test here passes on the fake but fails on Kafka (or the reverse), the fake is lying and the
unit tests built on it are not to be trusted: fix the fake.
"""

from __future__ import annotations

import time

import pytest

from events.errors import LogError
from events.log import EventLog, Message, partition_for
from events.topics import Topics, TopicSpec


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def event_log(request: pytest.FixtureRequest) -> EventLog:
    return request.getfixturevalue(f"{request.param}_log")


async def read_all(log: EventLog, topic: str, partition: int, expected: int, start: int = 0):
    """Read until `expected` records arrived (Kafka may hand them over in several fetches)."""
    records = []
    deadline = time.monotonic() + 20
    while len(records) < expected and time.monotonic() < deadline:
        records += await log.read(topic, partition, start + len(records), timeout_ms=1000)
    return records


async def consume(consumer, expected: int, timeout_s: float = 30.0):
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        records += await consumer.getmany(timeout_ms=500)
    return records


async def test_append_returns_positions_in_input_order_and_read_returns_them(event_log: EventLog,
                                                                             topics: Topics) -> None:
    messages = [Message(topics.batch, f"v{i}".encode(), key=b"batch-1") for i in range(50)]
    positions = await event_log.append(messages)

    partition = partition_for(b"batch-1", topics.batch_partitions)
    assert [p.partition for p in positions] == [partition] * 50
    assert [p.offset for p in positions] == list(range(50))
    records = await read_all(event_log, topics.batch, partition, 50)
    assert [r.value for r in records] == [m.value for m in messages]
    assert [r.offset for r in records] == list(range(50))
    assert all(r.key == b"batch-1" and r.topic == topics.batch for r in records)
    assert all(r.timestamp_ms > 0 for r in records)


async def test_keys_land_in_the_partition_partition_for_names(event_log: EventLog, topics: Topics) -> None:
    keys = [f"batch-{i}".encode() for i in range(40)]
    positions = await event_log.append([Message(topics.batch, b"x", key=k) for k in keys])
    assert [p.partition for p in positions] == [partition_for(k, topics.batch_partitions) for k in keys]
    assert len({p.partition for p in positions}) > 1  # the keys really spread


async def test_read_from_an_offset_continues_there(event_log: EventLog, topics: Topics) -> None:
    await event_log.append([Message(topics.control, str(i).encode(), key=b"control") for i in range(10)])
    tail = await read_all(event_log, topics.control, 0, 4, start=6)
    assert [r.value for r in tail] == [b"6", b"7", b"8", b"9"]
    assert [r.value for r in await event_log.read(topics.control, 0, 2, max_records=3)] == [b"2", b"3", b"4"]


async def test_end_offsets_count_appended_records_per_partition(event_log: EventLog, topics: Topics) -> None:
    assert await event_log.end_offsets(topics.instance) == {p: 0 for p in range(topics.instance_partitions)}
    keys = [f"instance-{i % 5}".encode() for i in range(23)]
    await event_log.append([Message(topics.instance, b"hb", key=k) for k in keys])
    expected = {p: 0 for p in range(topics.instance_partitions)}
    for k in keys:
        expected[partition_for(k, topics.instance_partitions)] += 1
    assert await event_log.end_offsets(topics.instance) == expected
    assert await event_log.partitions(topics.instance) == topics.instance_partitions


async def test_headers_round_trip(event_log: EventLog, topics: Topics) -> None:
    headers = (("reason", b"undecodable"), ("source-offset", b"42"), ("reason", b"second value"))
    await event_log.append([Message(topics.quarantine, b"\x00\xff", key=b"k", headers=headers)])
    [record] = await read_all(event_log, topics.quarantine, 0, 1)
    assert record.headers == headers
    assert record.value == b"\x00\xff"


async def test_read_of_an_empty_partition_returns_nothing_within_the_timeout(event_log: EventLog,
                                                                             topics: Topics) -> None:
    started = time.monotonic()
    assert await event_log.read(topics.control, 0, 0, timeout_ms=300) == []
    assert time.monotonic() - started < 5
    assert await event_log.read(topics.control, 0, 5, timeout_ms=300) == []  # past the end


async def test_create_topics_is_idempotent(event_log: EventLog, topics: Topics) -> None:
    await event_log.create_topics(topics.specs())
    extra = TopicSpec(f"{topics.prefix}extra", 3)
    await event_log.create_topics([extra])
    await event_log.create_topics([extra])
    assert await event_log.partitions(extra.name) == 3
    await event_log.append([Message(extra.name, b"x", key=b"a")])


async def test_append_to_a_missing_topic_raises_log_error(event_log: EventLog, topics: Topics) -> None:
    with pytest.raises(LogError, match="does not exist"):
        await event_log.end_offsets(f"{topics.prefix}missing")
    with pytest.raises(LogError, match="does not exist"):
        await event_log.append([Message(f"{topics.prefix}missing", b"x", key=b"a")])


async def test_group_consumer_resumes_from_committed_offsets_after_reopen(event_log: EventLog,
                                                                          topics: Topics) -> None:
    group = f"{topics.prefix}group"
    await event_log.append([Message(topics.control, str(i).encode(), key=b"control") for i in range(10)])

    first = await event_log.group_consumer(group, [topics.control])
    got = await consume(first, 10)
    assert [r.value for r in got] == [str(i).encode() for i in range(10)]
    assert first.assignment() == {(topics.control, 0)}
    await first.commit({(topics.control, 0): 6})  # effects of 0..5 stored; 6..9 not yet
    await first.close()

    await event_log.append([Message(topics.control, b"10", key=b"control")])
    second = await event_log.group_consumer(group, [topics.control])
    again = await consume(second, 5)
    assert [r.value for r in again] == [b"6", b"7", b"8", b"9", b"10"]
    await second.close()


async def test_a_new_group_starts_at_the_beginning(event_log: EventLog, topics: Topics) -> None:
    await event_log.append([Message(topics.batch, b"a", key=b"b1"), Message(topics.batch, b"b", key=b"b2")])
    consumer = await event_log.group_consumer(f"{topics.prefix}fresh", [topics.batch])
    got = await consume(consumer, 2)
    await consumer.close()
    assert sorted(r.value for r in got) == [b"a", b"b"]
    assert await a_second_group_sees_the_same_records(event_log, topics)


async def a_second_group_sees_the_same_records(log: EventLog, topics: Topics) -> bool:
    """A second group sees the same two records: groups do not share offsets."""
    other = await log.group_consumer(f"{topics.prefix}other", [topics.batch])
    got = await consume(other, 2)
    await other.close()
    return sorted(r.value for r in got) == [b"a", b"b"]


async def test_group_members_split_partitions_without_overlap(event_log: EventLog, topics: Topics) -> None:
    group = f"{topics.prefix}pair"
    keys = [f"b{i}".encode() for i in range(60)]
    await event_log.append([Message(topics.batch, k, key=k) for k in keys])
    a = await event_log.group_consumer(group, [topics.batch])
    await consume(a, 60, timeout_s=10)  # a alone owns everything first
    b = await event_log.group_consumer(group, [topics.batch])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # Kafka rebalances in the background of getmany
        await a.getmany(timeout_ms=200)
        await b.getmany(timeout_ms=200)
        if a.assignment() and b.assignment() and len(a.assignment() | b.assignment()) == topics.batch_partitions:
            break
    assert a.assignment() and b.assignment()
    assert not a.assignment() & b.assignment()
    assert len(a.assignment() | b.assignment()) == topics.batch_partitions
    await a.close()
    await b.close()


async def test_an_assigned_consumer_reads_its_partitions_from_the_given_offsets(event_log: EventLog,
                                                                                topics: Topics) -> None:
    await event_log.append([Message(topics.control, str(i).encode(), key=b"control") for i in range(10)])
    keys = [f"b{i}".encode() for i in range(30)]
    await event_log.append([Message(topics.batch, k, key=k) for k in keys])
    start = {(topics.control, 0): 7, **{(topics.batch, p): 0 for p in range(topics.batch_partitions)}}
    consumer = await event_log.assigned_consumer(start)
    got = await consume(consumer, 3 + 30)
    assert [r.value for r in got if r.topic == topics.control] == [b"7", b"8", b"9"]
    assert sorted(r.value for r in got if r.topic == topics.batch) == sorted(keys)
    for p in range(topics.batch_partitions):  # in offset order within each partition
        offsets = [r.offset for r in got if r.topic == topics.batch and r.partition == p]
        assert offsets == sorted(offsets)

    await event_log.append([Message(topics.control, b"10", key=b"control")])
    assert [r.value for r in await consume(consumer, 1)] == [b"10"]  # and follows the tail
    await consumer.close()


async def test_an_assigned_consumer_of_a_missing_topic_is_an_error(event_log: EventLog, topics: Topics) -> None:
    with pytest.raises(LogError, match="does not exist"):
        await event_log.assigned_consumer({(f"{topics.prefix}missing", 0): 0})


async def test_topics_are_created_with_their_explicit_settings(event_log: EventLog, topics: Topics) -> None:
    """Every topic carries squall's retention, never the cluster's default (Kafka's: 7 days)."""
    configs = await event_log.topic_configs([s.name for s in topics.specs()])
    for spec in topics.specs():
        assert {k: configs[spec.name][k] for k in spec.configs} == dict(spec.configs), spec.name
    assert configs[topics.batch]["retention.ms"] == "-1" and configs[topics.batch]["retention.bytes"] == "-1"
    assert configs[topics.heartbeat]["cleanup.policy"] == "compact"


async def test_creating_topics_again_changes_nothing(event_log: EventLog, topics: Topics) -> None:
    await event_log.append([Message(topics.batch, b"kept", key=b"b")])
    await event_log.create_topics(topics.specs())  # what every service does at start
    partition = partition_for(b"b", topics.batch_partitions)
    assert [r.value for r in await read_all(event_log, topics.batch, partition, 1)] == [b"kept"]


async def test_the_configuration_of_a_missing_topic_is_an_error(event_log: EventLog, topics: Topics) -> None:
    with pytest.raises(LogError, match="does not exist"):
        await event_log.topic_configs([f"{topics.prefix}no-such-topic"])
