"""The event log on Apache Kafka, through aiokafka.

    log = await KafkaEventLog.connect("127.0.0.1:9092", client_id="front")
    await log.create_topics(Topics().specs())
    positions = await log.append([Message(topic, value, key)])
    records = await log.read(topic, partition=0, start_offset=0)
    await log.close()

aiokafka's defaults are not Kafka's safe ones, so every setting that matters is explicit here:
the producer waits for all in-sync replicas and is idempotent (no duplicates on retry); readers
see only committed records; group consumers never auto-commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    OffsetOutOfRangeError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import ConsumerRecord, TopicPartition

from events.errors import LogAuthorizationError, LogError
from events.kafka_security import PLAINTEXT, KafkaSecurity
from events.log import Message, Position, Record, partition_for
from events.topics import TopicSpec

_NO_ERROR = 0
_UNKNOWN_TOPIC = 3
_TOPIC_AUTHORIZATION_FAILED = 29
_TOPIC_ALREADY_EXISTS = 36
MISSING_TOPIC_WAIT_S = 3.0  # how long an unknown topic may take to appear in metadata
CREATED_TOPIC_WAIT_S = 30.0  # after CreateTopics, until every partition has a leader


_REFUSED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)


def _failure(message: str, exc: BaseException) -> LogError:
    """The LogError for a Kafka error: LogAuthorizationError when an ACL refused the operation."""
    return LogAuthorizationError(message) if isinstance(exc, _REFUSED) else LogError(message)


def _record(r: ConsumerRecord) -> Record:  # type: ignore[type-arg]
    return Record(topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value,
                  timestamp_ms=r.timestamp, headers=tuple((k, bytes(v)) for k, v in (r.headers or ())))


class KafkaGroupConsumer:
    """A consumer-group member (events.log.GroupConsumer) over an AIOKafkaConsumer."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise _failure(f"consuming failed: {exc!r}", exc) from exc
        return [_record(r) for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for r in batches[tp]]

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except KafkaError as exc:
            raise _failure(f"committing offsets {offsets} failed: {exc!r}", exc) from exc

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def close(self) -> None:
        await self._consumer.stop()


class KafkaAssignedConsumer:
    """events.log.AssignedConsumer over an AIOKafkaConsumer without a group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise _failure(f"consuming failed: {exc!r}", exc) from exc
        return [_record(r) for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for r in batches[tp]]

    async def close(self) -> None:
        await self._consumer.stop()


class KafkaEventLog:
    """events.log.EventLog on a Kafka cluster. Create with `await KafkaEventLog.connect(...)`."""

    def __init__(self, bootstrap: str, client_id: str, producer: AIOKafkaProducer | None,
                 reader: AIOKafkaConsumer, admin: AIOKafkaAdminClient, replication_factor: int,
                 security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.security = security
        self._producer = producer
        self._reader = reader
        self._admin = admin
        self._replication_factor = replication_factor
        self._read_lock = asyncio.Lock()  # one shared reader: reads must not interleave seeks
        self._reader_at: tuple[TopicPartition, int] | None = None  # where the reader will continue
        self._round_robin = itertools.count()  # unkeyed messages spread over partitions

    @classmethod
    async def connect(cls, bootstrap: str, client_id: str = "squall", *, linger_ms: int = 5,
                      max_batch_size: int = 512 * 1024, replication_factor: int = 1,
                      request_timeout_ms: int = 30_000, security: KafkaSecurity | None = None,
                      read_only: bool = False) -> KafkaEventLog:
        """Connect producer, reader and admin client, authenticated as `security` says (none by
        default). `replication_factor` applies to created topics (1 for a single broker; 3 on a
        production cluster). `read_only`: no producer (an idempotent producer needs the right to
        write somewhere, which a principal that only reads does not have)."""
        security = security or PLAINTEXT
        auth = security.client_kwargs()
        producer = None if read_only else AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id=f"{client_id}-producer", acks="all",
            enable_idempotence=True, linger_ms=linger_ms, max_batch_size=max_batch_size,
            request_timeout_ms=request_timeout_ms, **auth)
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, client_id=f"{client_id}-reader", group_id=None,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="none",
            request_timeout_ms=request_timeout_ms, fetch_max_wait_ms=100, **auth)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{client_id}-admin",
                                    request_timeout_ms=request_timeout_ms, **auth)
        clients = [c for c in (producer, reader, admin) if c is not None]
        try:
            for client in clients:
                await client.start()
        except Exception as exc:
            for client in clients:  # one that failed half-way holds connections too
                with contextlib.suppress(Exception):
                    await _stop(client)
            raise _failure(f"cannot connect to Kafka at {bootstrap} as {security.principal} "
                           f"({security.security_protocol}): {exc!r}; is the broker running (squall kafka "
                           "start), --bootstrap right, and do the credentials match the listener?", exc) from exc
        return cls(bootstrap, client_id, producer, reader, admin, replication_factor, security)

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet, with their explicit settings. Topics that exist
        (or that this principal may not even see) are left alone, so a role without the right to
        create topics can call it once an administrator has created them."""
        missing = await self._missing_topics([s.name for s in specs])
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=self._replication_factor,
                        topic_configs=dict(s.configs))
               for s in specs if s.name in missing]
        if not new:
            return
        try:
            response = await self._admin.create_topics(new)
        except KafkaError as exc:
            raise _failure(f"creating topics {[t.name for t in new]} failed: {exc!r}", exc) from exc
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == _TOPIC_AUTHORIZATION_FAILED:
                raise LogError(f"topic {name!r} does not exist and this principal may not create it; "
                               "create the topics as an administrator first (squall up does)")
            if code not in (_NO_ERROR, _TOPIC_ALREADY_EXISTS):
                message = topic_error[2] if len(topic_error) > 2 else ""
                raise LogError(f"creating topic {name!r} failed: error code {code} {message}")
        for topic in new:  # the broker answers before every client sees the new metadata
            await self._wait_partitions(topic.name, CREATED_TOPIC_WAIT_S)

    async def _missing_topics(self, names: Sequence[str]) -> set[str]:
        try:
            described = await self._admin.describe_topics(list(names))
        except KafkaError as exc:
            raise _failure(f"describing topics {list(names)} failed: {exc!r}", exc) from exc
        return {t["topic"] for t in described if t["error_code"] == _UNKNOWN_TOPIC}

    async def topic_configs(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each topic's effective configuration (explicit settings and the broker defaults it inherits)."""
        try:
            responses = await self._admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        except KafkaError as exc:
            raise _failure(f"describing the configuration of {list(names)} failed: {exc!r}", exc) from exc
        out: dict[str, dict[str, str]] = {}
        for response in responses:
            for code, message, _type, name, entries in _config_resources(response):
                if code == _UNKNOWN_TOPIC:
                    raise LogError(f"topic {name!r} does not exist (squall up creates the topics)")
                if code == _TOPIC_AUTHORIZATION_FAILED:
                    raise LogAuthorizationError(f"{self.security.principal} may not describe the configuration "
                                                f"of topic {name!r} (no ACL allows it)")
                if code != _NO_ERROR:
                    raise LogError(f"describing the configuration of topic {name!r} failed: error code {code} "
                                   f"{message or ''}".rstrip())
                out[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
        return out

    async def _wait_partitions(self, topic: str, wait_s: float = MISSING_TOPIC_WAIT_S) -> set[int]:
        """The topic's partitions from the producer's metadata; LogError if it does not exist."""
        client = self._producer.client if self._producer is not None else self._reader._client  # noqa: SLF001
        found = client.cluster.partitions_for_topic(topic)
        if found:
            return set(found)
        client.add_topic(topic)  # track it, so metadata refreshes ask for it
        deadline = time.monotonic() + wait_s
        while True:
            try:
                await client.force_metadata_update()
            except KafkaError as exc:
                raise _failure(f"cannot fetch metadata of topic {topic!r}: {exc!r}", exc) from exc
            found = client.cluster.partitions_for_topic(topic)
            if found:
                return set(found)
            if topic in client.cluster.unauthorized_topics:
                raise LogAuthorizationError(f"{self.security.principal} may not use topic {topic!r} "
                                            "(no ACL allows it)")
            if time.monotonic() > deadline:
                raise LogError(f"topic {topic!r} does not exist (create it with create_topics)")
            await asyncio.sleep(0.05)

    async def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append in record batches built here, one stream per partition, then wait for every
        acknowledgement. Building batches ourselves is ~3x faster than one send() per message,
        and choosing partitions with `partition_for` keeps the placement the log contract names."""
        producer = self._producer
        if producer is None:
            raise LogError(f"this log ({self.client_id}) was opened read-only: it cannot append")
        try:
            streams = await self._partitioned(messages)
            pending = []  # (ack future, indexes of the messages in that batch)
            for (topic, partition), indexes in streams.items():
                for batch, batch_indexes in self._batches(producer, messages, indexes):
                    pending.append((await producer.send_batch(batch, topic, partition=partition),
                                    batch_indexes))
            acks = await asyncio.gather(*(future for future, _ in pending))
        except KafkaError as exc:
            raise _failure(f"appending {len(messages)} messages failed (some may be stored): {exc!r}", exc) from exc
        positions: list[Position | None] = [None] * len(messages)
        for ack, (_, batch_indexes) in zip(acks, pending, strict=True):
            for i, index in enumerate(batch_indexes):
                positions[index] = Position(ack.topic, ack.partition, ack.offset + i)
        return positions  # type: ignore[return-value]  # every index was filled above

    async def _partitioned(self, messages: Sequence[Message]) -> dict[tuple[str, int], list[int]]:
        counts: dict[str, int] = {}
        streams: dict[tuple[str, int], list[int]] = {}
        for index, m in enumerate(messages):
            if m.topic not in counts:
                counts[m.topic] = len(await self._wait_partitions(m.topic))
            if m.key is not None:
                partition = partition_for(m.key, counts[m.topic])
            else:
                partition = next(self._round_robin) % counts[m.topic]
            streams.setdefault((m.topic, partition), []).append(index)
        return streams

    @staticmethod
    def _batches(producer: AIOKafkaProducer, messages: Sequence[Message],
                 indexes: list[int]) -> Iterator[tuple[Any, list[int]]]:
        batch, members = producer.create_batch(), list[int]()
        for index in indexes:
            m = messages[index]
            if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)) is None:
                yield batch, members  # full: send it and start the next
                batch, members = producer.create_batch(), []
                if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)) is None:
                    raise LogError(f"message {index} ({len(m.value)} bytes) is larger than a whole batch")
            members.append(index)
        if members:
            yield batch, members

    async def partitions(self, topic: str) -> int:
        return len(await self._wait_partitions(topic))

    async def end_offsets(self, topic: str) -> dict[int, int]:
        parts = [TopicPartition(topic, p) for p in sorted(await self._wait_partitions(topic))]
        try:
            ends = await self._reader.end_offsets(parts)
        except KafkaError as exc:
            raise _failure(f"end offsets of {topic!r} failed: {exc!r}", exc) from exc
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def read(self, topic: str, partition: int, start_offset: int, max_records: int = 10_000,
                   timeout_ms: int = 1000) -> list[Record]:
        tp = TopicPartition(topic, partition)
        async with self._read_lock:
            # Continuing where the last read stopped keeps the reader's prefetched data: no seek.
            if self._reader_at != (tp, start_offset):
                if self._reader.assignment() != {tp}:
                    # a topic this principal may not see would otherwise read as empty, forever
                    await self._wait_partitions(topic)
                    self._reader.assign([tp])
                self._reader.seek(tp, start_offset)
            self._reader_at = None
            try:
                batches = await self._reader.getmany(tp, timeout_ms=timeout_ms, max_records=max_records)
            except OffsetOutOfRangeError:
                return await self._out_of_range(tp, start_offset)
            except KafkaError as exc:
                raise _failure(f"reading {topic}[{partition}] from {start_offset} failed: {exc!r}", exc) from exc
            records = [_record(r) for r in batches.get(tp, [])]
            self._reader_at = (tp, records[-1].offset + 1 if records else start_offset)
            return records

    async def _out_of_range(self, tp: TopicPartition, start_offset: int) -> list[Record]:
        end = (await self._reader.end_offsets([tp]))[tp]
        if start_offset >= end:
            return []  # past the end: nothing there yet, like an empty partition
        raise LogError(f"offset {start_offset} of {tp.topic}[{tp.partition}] is no longer in the log "
                       f"(deleted by retention); the log ends at {end}")

    async def group_consumer(self, group_id: str, topics: Sequence[str]) -> KafkaGroupConsumer:
        consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-{group_id}",
            group_id=group_id, enable_auto_commit=False, isolation_level="read_committed",
            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
            fetch_max_wait_ms=100, **self.security.client_kwargs())
        try:
            await consumer.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise _failure(f"joining consumer group {group_id!r} on {list(topics)} failed: {exc!r}", exc) from exc
        return KafkaGroupConsumer(consumer)

    async def assigned_consumer(self, start_offsets: Mapping[tuple[str, int], int]) -> KafkaAssignedConsumer:
        """A consumer without a group (no join, no coordinator): assigned these partitions, each
        positioned at its offset."""
        for topic in {t for t, _ in start_offsets}:
            await self._wait_partitions(topic)  # an unknown or forbidden topic is an error, not silence
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-assigned", group_id=None,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            fetch_max_wait_ms=100, **self.security.client_kwargs())
        try:
            await consumer.start()
            tps = {TopicPartition(t, p): offset for (t, p), offset in start_offsets.items()}
            consumer.assign(list(tps))
            for tp, offset in tps.items():
                consumer.seek(tp, offset)
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise _failure(f"reading {sorted(start_offsets)} failed: {exc!r}", exc) from exc
        return KafkaAssignedConsumer(consumer)

    async def close(self) -> None:
        for client in (self._producer, self._reader, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await _stop(client)


def _config_resources(response: Any) -> list[tuple[int, str | None, int, str, list[tuple[Any, ...]]]]:
    """(error code, message, resource type, name, config entries) of a DescribeConfigs response."""
    return [(r[0], r[1], r[2], r[3], list(r[4])) for r in response.resources]


async def _stop(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    if isinstance(client, AIOKafkaAdminClient):
        await client.close()
    else:
        await client.stop()
