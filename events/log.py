"""The event log: a Protocol every backend implements (Kafka via aiokafka, and an in-memory fake).

Semantics every adapter must honour (tests/contract/test_event_log.py runs over all of them):
- `append` is the commit point: when it returns, every message is durable (Kafka: acks=all,
  idempotent producer) and the positions are returned in input order.
- Messages with the same key land in the same partition (Kafka's murmur2 partitioner, see
  `partition_for`), and keep their order there.
- `read` returns records of one partition from an offset, in offset order.
- A group consumer commits offsets only when told (`commit`), after the effect is stored.
- An assigned consumer reads the partitions it is given from the offsets it is given, with no group:
  a private view that starts where its snapshot ends (projections/snapshots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.partitioner import murmur2  # pure function; the same hash Kafka's Java clients use

from events.topics import TopicSpec


@dataclass(frozen=True, slots=True)
class Message:
    """A message to append: key decides the partition; headers carry metadata (e.g. quarantine reason)."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """A message as stored in the log, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


def partition_for(key: bytes, n_partitions: int) -> int:
    """Kafka's default partition for a key: positive murmur2 modulo the partition count."""
    return (murmur2(key) & 0x7FFFFFFF) % n_partitions


class GroupConsumer(Protocol):
    """A consumer-group member: partitions are assigned by the group; offsets committed explicitly."""

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        """Next records of the assigned partitions (ordered within each partition); [] on timeout."""
        ...

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit 'next offset to read' per (topic, partition)."""
        ...

    def assignment(self) -> set[tuple[str, int]]: ...

    async def close(self) -> None: ...


class AssignedConsumer(Protocol):
    """Reads fixed partitions from given offsets: no group, nothing committed."""

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        """Next records of its partitions (ordered within each partition); [] on timeout."""
        ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet (idempotent)."""
        ...

    async def topic_configs(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each topic's effective settings (retention.ms, cleanup.policy, ...), defaults included."""
        ...

    async def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append durably; positions in input order. Raises LogError on failure (nothing is implied)."""
        ...

    async def partitions(self, topic: str) -> int: ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""
        ...

    async def read(self, topic: str, partition: int, start_offset: int, max_records: int = 10_000,
                   timeout_ms: int = 1000) -> list[Record]:
        """Records of one partition from start_offset, in order; [] when none arrive in timeout_ms."""
        ...

    async def group_consumer(self, group_id: str, topics: Sequence[str]) -> GroupConsumer:
        """Join a consumer group; it resumes from the group's committed offsets (or the start)."""
        ...

    async def assigned_consumer(self, start_offsets: Mapping[tuple[str, int], int]) -> AssignedConsumer:
        """Read exactly these (topic, partition)s, each from its offset (the next record to fold)."""
        ...

    async def close(self) -> None: ...
