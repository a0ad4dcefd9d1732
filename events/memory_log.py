"""An in-memory event log with Kafka's semantics, for unit tests and simulations.

It is an honest fake (tests/contract/test_event_log.py runs the same suite over it and Kafka):
keyed messages go to `partition_for(key, n)`, offsets count from 0 per partition, headers are
kept, reads wait up to their timeout for new records, and consumer groups split partitions among
their members and resume from the group's committed offsets after a rebalance or a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence

from events.errors import LogError
from events.log import Message, Position, Record, partition_for
from events.topics import TopicSpec

# what a Kafka broker left at its defaults gives a topic created without settings (7 days)
KAFKA_DEFAULT_TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class _Group:
    """A consumer group: its members (in join order), generation, and committed offsets."""

    def __init__(self) -> None:
        self.members: list[MemoryGroupConsumer] = []
        self.generation = 0
        self.committed: dict[tuple[str, int], int] = {}


class MemoryEventLog:
    """events.log.EventLog in memory. `clock` gives record timestamps (ms); inject one for replay."""

    def __init__(self, clock: Callable[[], int] = _wall_clock_ms,
                 broker_defaults: Mapping[str, str] = KAFKA_DEFAULT_TOPIC_CONFIGS) -> None:
        self._clock = clock
        self._broker_defaults = dict(broker_defaults)
        self._partitions: dict[str, list[list[Record]]] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self._groups: dict[str, _Group] = {}
        self._round_robin = itertools.count()  # unkeyed messages spread over partitions
        # set and replaced at every change; a waiter holds the one it saw. No lock: an
        # asyncio.Condition's lock leaked under load (Python 3.11: a reader's wait_for timing out
        # as it was notified), after which every append blocked for good
        self._changed = asyncio.Event()
        self._closed = False

    # --- EventLog --------------------------------------------------------------------------
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        self._check_open()
        created = False
        for spec in specs:
            if spec.name not in self._partitions:
                if spec.partitions < 1:
                    raise LogError(f"topic {spec.name!r} needs at least one partition")
                self._partitions[spec.name] = [[] for _ in range(spec.partitions)]
                self._configs[spec.name] = {**self._broker_defaults, **spec.configs}
                created = True
        if created:  # subscribers of a new topic get its partitions, as after a Kafka rebalance
            for group in self._groups.values():
                group.generation += 1
            await self._notify()

    async def topic_configs(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        self._check_open()
        unknown = [n for n in names if n not in self._configs]
        if unknown:
            raise LogError(f"describing the configuration of topic {unknown[0]!r} failed: it does not exist")
        return {n: dict(self._configs[n]) for n in names}

    def alter_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """What an operator's kafka-configs --alter would do (for tests of the retention check)."""
        self._configs[name].update(configs)

    async def append(self, messages: Sequence[Message]) -> list[Position]:
        self._check_open()
        for m in messages:  # all or nothing: validate before storing any
            self._topic(m.topic)
        now = self._clock()
        positions = []
        for m in messages:
            parts = self._partitions[m.topic]
            p = partition_for(m.key, len(parts)) if m.key is not None else next(self._round_robin) % len(parts)
            offset = len(parts[p])
            parts[p].append(Record(topic=m.topic, partition=p, offset=offset, key=m.key, value=m.value,
                                   timestamp_ms=now, headers=tuple(m.headers)))
            positions.append(Position(m.topic, p, offset))
        await self._notify()
        return positions

    async def partitions(self, topic: str) -> int:
        return len(self._topic(topic))

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return {p: len(records) for p, records in enumerate(self._topic(topic))}

    async def read(self, topic: str, partition: int, start_offset: int, max_records: int = 10_000,
                   timeout_ms: int = 1000) -> list[Record]:
        parts = self._topic(topic)
        if not 0 <= partition < len(parts):
            raise LogError(f"topic {topic!r} has no partition {partition} (it has {len(parts)})")
        records = parts[partition]

        def available() -> bool:
            return len(records) > start_offset or self._closed

        await self._wait_for(available, timeout_ms)
        return records[start_offset:start_offset + max_records]

    async def group_consumer(self, group_id: str, topics: Sequence[str]) -> MemoryGroupConsumer:
        self._check_open()
        group = self._groups.setdefault(group_id, _Group())
        member = MemoryGroupConsumer(self, group, tuple(topics))
        group.members.append(member)
        group.generation += 1
        return member

    async def assigned_consumer(self, start_offsets: Mapping[tuple[str, int], int]) -> MemoryAssignedConsumer:
        self._check_open()
        for topic, partition in start_offsets:
            parts = self._topic(topic)
            if not 0 <= partition < len(parts):
                raise LogError(f"topic {topic!r} has no partition {partition} (it has {len(parts)})")
        return MemoryAssignedConsumer(self, dict(start_offsets))

    async def close(self) -> None:
        self._closed = True
        await self._notify()

    # --- inspection for tests ----------------------------------------------------------------
    def committed(self, group_id: str) -> dict[tuple[str, int], int]:
        """The group's committed offsets (next offset to read) per (topic, partition)."""
        group = self._groups.get(group_id)
        return dict(group.committed) if group else {}

    # --- internals ---------------------------------------------------------------------------
    def _topic(self, topic: str) -> list[list[Record]]:
        try:
            return self._partitions[topic]
        except KeyError:
            raise LogError(f"topic {topic!r} does not exist (create it with create_topics)") from None

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the event log is closed")

    async def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_for(self, predicate: Callable[[], bool], timeout_ms: int) -> None:
        if predicate() or timeout_ms <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            changed = self._changed  # no await since predicate(): no change can be missed
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation that
                # arrives as the event is set, and the reader's task would never end
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return

    def _subscribed_partitions(self, topics: Sequence[str]) -> list[tuple[str, int]]:
        return [(t, p) for t in topics if t in self._partitions for p in range(len(self._partitions[t]))]


class MemoryGroupConsumer:
    """A member of an in-memory consumer group. Partitions are dealt round-robin to the members in
    join order; after any membership change every member restarts from the committed offsets
    (Kafka's eager rebalance), so uncommitted records are delivered again."""

    def __init__(self, log: MemoryEventLog, group: _Group, topics: tuple[str, ...]) -> None:
        self._log = log
        self._group = group
        self._topics = topics
        self._generation = -1
        self._positions: dict[tuple[str, int], int] = {}
        self._closed = False

    def _sync(self) -> None:
        if self._generation == self._group.generation:
            return
        self._generation = self._group.generation
        # Every member of a group subscribes to the union of the members' topics, like Kafka's
        # range of subscriptions; each partition goes to exactly one member.
        subscribed = sorted({tp for m in self._group.members for tp in self._log._subscribed_partitions(m._topics)})
        me = self._group.members.index(self)
        n = len(self._group.members)
        mine = [tp for i, tp in enumerate(subscribed) if i % n == me and tp[0] in self._topics]
        self._positions = {tp: self._group.committed.get(tp, 0) for tp in mine}

    def assignment(self) -> set[tuple[str, int]]:
        if self._closed:
            return set()
        self._sync()
        return set(self._positions)

    def _pending(self) -> bool:
        self._sync()
        return any(len(self._log._partitions[t][p]) > pos for (t, p), pos in self._positions.items())

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        if self._closed:
            raise LogError("this group consumer is closed")
        await self._log._wait_for(lambda: self._closed or self._pending(), timeout_ms)
        self._sync()
        budget = max_records if max_records is not None else 10_000
        out: list[Record] = []
        for (t, p), pos in sorted(self._positions.items()):
            if budget <= 0:
                break
            taken = self._log._partitions[t][p][pos:pos + budget]
            out.extend(taken)
            budget -= len(taken)
            self._positions[(t, p)] = pos + len(taken)
        return out

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self._closed:
            raise LogError("this group consumer is closed: its offsets can no longer be committed")
        self._sync()
        foreign = set(offsets) - set(self._positions)
        if foreign:
            raise LogError(f"cannot commit partitions not assigned to this member: {sorted(foreign)}")
        self._group.committed.update(offsets)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._group.members.remove(self)
        self._group.generation += 1
        await self._log._notify()


class MemoryAssignedConsumer:
    """Reads fixed partitions from given offsets (events.log.AssignedConsumer)."""

    def __init__(self, log: MemoryEventLog, positions: dict[tuple[str, int], int]) -> None:
        self._log = log
        self._positions = positions
        self._closed = False

    def _pending(self) -> bool:
        return any(len(self._log._partitions[t][p]) > pos for (t, p), pos in self._positions.items())

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[Record]:
        if self._closed:
            raise LogError("this consumer is closed")
        await self._log._wait_for(lambda: self._closed or self._pending(), timeout_ms)
        budget = max_records if max_records is not None else 10_000
        out: list[Record] = []
        for (t, p), pos in sorted(self._positions.items()):
            if budget <= 0:
                break
            taken = self._log._partitions[t][p][pos:pos + budget]
            out.extend(taken)
            budget -= len(taken)
            self._positions[(t, p)] = pos + len(taken)
        return out

    async def close(self) -> None:
        self._closed = True
