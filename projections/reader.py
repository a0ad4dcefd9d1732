"""Reading a set of partitions from given offsets: what a runner worker needs from the log.

`LogReader` works over any EventLog (`read` one partition at a time; the in-memory log in tests).
`KafkaPartitionReader` is the fast path for Kafka: one consumer per worker, manually assigned to
the worker's partitions (no consumer group: the offsets are the projection's, stored in
Postgres), seeked to the stored offsets, fetching from all of them at once. EventLog.read would
re-assign and re-seek a shared consumer on every call, which costs a metadata round trip per
partition switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from events.errors import LogError
from events.kafka_security import PLAINTEXT, KafkaSecurity
from events.log import EventLog, Record

TP = tuple[str, int]


class PartitionReader(Protocol):
    async def seek(self, offsets: dict[TP, int]) -> None:
        """Continue each partition from this offset (also after the worker reloaded its offsets)."""
        ...

    async def fetch(self, limits: dict[TP, int], max_records: int, timeout_ms: int) -> dict[TP, list[Record]]:
        """Next records of the partitions, each below its limit (absent: no limit); waits up to
        timeout_ms when there are none."""
        ...

    async def close(self) -> None: ...


class LogReader:
    """Reads through EventLog.read, partition by partition, skipping those with nothing new."""

    def __init__(self, log: EventLog, partitions: Sequence[TP]) -> None:
        self.log = log
        self.partitions = list(partitions)
        self.positions: dict[TP, int] = dict.fromkeys(self.partitions, 0)

    async def seek(self, offsets: dict[TP, int]) -> None:
        self.positions.update(offsets)

    async def fetch(self, limits: dict[TP, int], max_records: int, timeout_ms: int) -> dict[TP, list[Record]]:
        ends: dict[TP, int] = {}
        for topic in {t for t, _ in self.partitions}:
            for partition, end in (await self.log.end_offsets(topic)).items():
                ends[(topic, partition)] = end
        out: dict[TP, list[Record]] = {}
        budget = max_records
        for tp in self.partitions:
            stop = min(ends.get(tp, 0), limits.get(tp, ends.get(tp, 0)))
            if budget <= 0 or self.positions[tp] >= stop:
                continue
            records = await self.log.read(tp[0], tp[1], self.positions[tp], max_records=min(budget, stop - self.positions[tp]),
                                          timeout_ms=timeout_ms)
            records = [r for r in records if r.offset < stop]
            if records:
                out[tp] = records
                budget -= len(records)
                self.positions[tp] = records[-1].offset + 1
        return out

    async def close(self) -> None:
        pass


# Record is a frozen dataclass: its __init__ sets each field through object.__setattr__, which costs
# more than the rest of reading a record. `_record` fills the same slots through their descriptors
# (what that __init__ ends up doing), so the objects are identical, at a third of the cost.
_RECORD_FIELDS = ("topic", "partition", "offset", "key", "value", "timestamp_ms", "headers")
if tuple(f.name for f in fields(Record)) != _RECORD_FIELDS or not hasattr(Record, "__slots__"):
    raise ImportError("events.log.Record changed: update projections.reader._record")
_new_record = object.__new__
_set_topic, _set_partition, _set_offset, _set_key, _set_value, _set_timestamp, _set_headers = (
    getattr(Record, name).__set__ for name in _RECORD_FIELDS)


def _record(m: Any) -> Record:
    """Record(topic=m.topic, ...) of an aiokafka ConsumerRecord."""
    record = _new_record(Record)
    _set_topic(record, m.topic)
    _set_partition(record, m.partition)
    _set_offset(record, m.offset)
    _set_key(record, m.key)
    _set_value(record, m.value)
    _set_timestamp(record, m.timestamp)
    _set_headers(record, tuple(m.headers or ()))
    return record


class KafkaPartitionReader:
    def __init__(self, consumer: AIOKafkaConsumer, partitions: Sequence[TP]) -> None:
        self.consumer = consumer
        self.partitions = [TopicPartition(t, p) for t, p in partitions]
        self.positions: dict[TP, int] = {}

    @classmethod
    async def open(cls, bootstrap: str, partitions: Sequence[TP], client_id: str = "squall-projection",
                   max_partition_fetch_bytes: int = 4 * 1024 * 1024,
                   security: KafkaSecurity | None = None) -> KafkaPartitionReader:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, client_id=client_id, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="none", fetch_max_wait_ms=100,
            max_partition_fetch_bytes=max_partition_fetch_bytes, **(security or PLAINTEXT).client_kwargs())
        try:
            await consumer.start()
        except KafkaError as exc:
            raise LogError(f"cannot connect to Kafka at {bootstrap}: {exc!r}") from exc
        consumer.assign([TopicPartition(t, p) for t, p in partitions])
        return cls(consumer, partitions)

    async def seek(self, offsets: dict[TP, int]) -> None:
        for (topic, partition), offset in offsets.items():
            self.consumer.seek(TopicPartition(topic, partition), offset)
            self.positions[(topic, partition)] = offset

    async def fetch(self, limits: dict[TP, int], max_records: int, timeout_ms: int) -> dict[TP, list[Record]]:
        # partitions at their limit stay paused, so the fetch returns only what may be applied
        active: list[TopicPartition] = []
        paused: list[TopicPartition] = []
        for tp in self.partitions:
            key = (tp.topic, tp.partition)
            (paused if key in limits and self.positions.get(key, 0) >= limits[key] else active).append(tp)
        self.consumer.pause(*paused)
        self.consumer.resume(*active)
        if not active:
            return {}
        try:
            batches = await self.consumer.getmany(*active, timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise LogError(f"reading {[str(tp) for tp in active]} failed: {exc!r}") from exc
        out: dict[TP, list[Record]] = {}
        for tp, messages in batches.items():
            key = (tp.topic, tp.partition)
            limit = limits.get(key)
            if limit is None or (messages and messages[-1].offset < limit):
                records = [_record(m) for m in messages]
            else:
                records = [_record(m) for m in messages if m.offset < limit]
            if records:
                out[key] = records
                self.positions[key] = records[-1].offset + 1
            if limit is not None and messages and messages[-1].offset >= limit:
                self.consumer.seek(tp, self.positions.get(key, limit))  # fetched past the limit: back up
        return out

    async def close(self) -> None:
        await self.consumer.stop()
