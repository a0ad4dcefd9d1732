"""The generic projection loop over an EventLog: ordered per partition, parallel across partitions.

Offsets live with the projection's own state (Postgres `projection_offsets`), not in Kafka's group
offsets: each worker asks the projection where each of its partitions stands, reads from there,
and hands a chunk (up to `max_batch` records) to `Projection.apply`, which stores the effects and
the new offsets in ONE transaction. A crash at any point therefore loses or repeats nothing.

Poison: a record that does not decode is quarantined straight away; if applying a chunk fails
with `PoisonError` (a projection raises it for an `UnprojectableEvent`, or a value its store
refuses), the chunk is split in halves until the one record at fault is found, and that record is
quarantined (table + quarantine topic, with the reason). The loop keeps going. Any other error is
a bug or an outage, and ends the loop: a bug in a fold is never mistaken for a bad event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from events.catalog import Event
from events.codec import Codec
from events.errors import DecodeError
from events.log import EventLog, Message, Record
from events.topics import Topics
from projections.reader import LogReader, PartitionReader

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


async def log_end(log: EventLog, topics: Topics) -> dict[TopicPartition, int]:
    """Where the log ends now, per partition of the topics the projections fold: an `until` that
    folds everything appended so far."""
    return {(t, p): end for t in topics.fold_topics for p, end in (await log.end_offsets(t)).items()}


class PoisonError(Exception):
    """Applying the chunk failed because of its content (not the database or the network)."""


class OffsetsMoved(Exception):
    """The stored offsets are not where this worker expected: another worker applied the records."""


@dataclass(frozen=True)
class Quarantined:
    record: Record
    reason: str
    event_type: str | None


@dataclass(frozen=True)
class PartitionChunk:
    """Consecutive records of one partition: [start_offset, next_offset)."""

    topic: str
    partition: int
    start_offset: int
    next_offset: int
    events: Sequence[tuple[Record, Event]]
    quarantined: Sequence[Quarantined] = ()


class Projection:
    """What the runner drives. One instance per worker (it owns a database connection)."""

    name: str

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        raise NotImplementedError

    async def apply(self, chunks: Sequence[PartitionChunk]) -> None:
        """Store the chunks' effects and each partition's next_offset in one transaction.
        Raise OffsetsMoved if a partition's stored offset is not its chunk's start_offset,
        PoisonError if the content cannot be applied."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


@dataclass
class RunnerSettings:
    max_batch: int = 5_000        # records per transaction (over all of a worker's partitions)
    workers: int = 2              # parallel workers; same-numbered partitions are dealt round-robin
    idle_sleep_s: float = 0.05    # pause when every partition is caught up
    read_timeout_ms: int = 200
    publish_quarantine: bool = True  # replay quarantines into its table only, never the topic again


def same_numbered(partitions: Sequence[TopicPartition]) -> list[list[TopicPartition]]:
    """The partitions grouped by number, each group to be dealt to one worker (and one shard).

    Topics keyed alike are co-partitioned: the instance topic and the heartbeat topic are both keyed
    by instance name, so partition p of each holds the same instances. Two workers folding them
    apart would both insert an instance's row (a unique violation) and overwrite each other's
    columns; one worker folding both orders them on one model."""
    groups: dict[int, list[TopicPartition]] = {}
    for topic, partition in partitions:
        groups.setdefault(partition, []).append((topic, partition))
    return [groups[p] for p in sorted(groups)]


class Runner:
    def __init__(self, log_: EventLog, topics: Sequence[str], open_projection: Callable[[], Awaitable[Projection]],
                 quarantine_topic: str | None, settings: RunnerSettings | None = None,
                 codec: Codec | None = None,
                 open_reader: Callable[[Sequence[TopicPartition]], Awaitable[PartitionReader]] | None = None) -> None:
        self.log = log_
        self.topics = list(topics)
        self.open_projection = open_projection
        self.quarantine_topic = quarantine_topic
        self.settings = settings or RunnerSettings()
        self.codec = codec or Codec()
        self.open_reader = open_reader or self._log_reader
        self.applied = 0  # records applied or quarantined by this runner (all workers)
        self.positions: dict[TopicPartition, int] = {}  # next offset to apply, per partition a worker holds

    async def _log_reader(self, share: Sequence[TopicPartition]) -> PartitionReader:
        return LogReader(self.log, share)

    async def partitions(self) -> list[TopicPartition]:
        return [(t, p) for t in self.topics for p in range(await self.log.partitions(t))]

    async def run(self, stop: asyncio.Event | None = None, until: dict[TopicPartition, int] | None = None,
                  shard: tuple[int, int] | None = None) -> None:
        """Process until `stop` is set, or (with `until`) until every partition reached its offset.
        `shard` (index, count): only every count-th group of same-numbered partitions from index, to
        spread partitions over processes (each process then deals its share among its workers)."""
        stop = stop or asyncio.Event()
        groups = same_numbered(await self.partitions())
        if shard is not None:
            index, count = shard
            groups = groups[index::count]
        n = max(1, min(self.settings.workers, len(groups)))
        shares = [[tp for group in groups[i::n] for tp in group] for i in range(n)]
        workers = [asyncio.create_task(self._worker(share, stop, until)) for share in shares]
        try:
            await asyncio.gather(*workers)
        finally:  # one worker failed (or we were cancelled): stop the others rather than orphan them
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, share: list[TopicPartition], stop: asyncio.Event,
                      until: dict[TopicPartition, int] | None) -> None:
        projection = await self.open_projection()
        reader = await self.open_reader(share)
        try:
            offsets = await projection.stored_offsets(share)
            await reader.seek(offsets)
            self.positions.update(offsets)
            limits = {tp: until.get(tp, 0) for tp in share} if until is not None else {}
            while not stop.is_set():
                if until is not None and all(offsets[tp] >= until.get(tp, 0) for tp in share):
                    return
                fetched = await reader.fetch(limits, self.settings.max_batch, self.settings.read_timeout_ms)
                if not fetched:
                    if until is None:
                        await _sleep_or_stop(stop, self.settings.idle_sleep_s)
                    continue
                chunks = [self._decode(tp, offsets[tp], records) for tp, records in fetched.items()]
                await self._publish([q for c in chunks for q in c.quarantined])
                try:
                    await self._apply(projection, chunks)
                except OffsetsMoved:
                    log.warning("offsets moved under this worker (another projector?); reloading them")
                    offsets = await projection.stored_offsets(share)
                    await reader.seek(offsets)
                    self.positions.update(offsets)
                    continue
                for chunk in chunks:
                    offsets[(chunk.topic, chunk.partition)] = chunk.next_offset
                    self.positions[(chunk.topic, chunk.partition)] = chunk.next_offset
        finally:
            await reader.close()
            await projection.close()

    def _decode(self, tp: TopicPartition, start: int, records: Sequence[Record]) -> PartitionChunk:
        """A chunk from the worker's position (not the first record's offset: the log may have gaps)."""
        events: list[tuple[Record, Event]] = []
        quarantined: list[Quarantined] = []
        decode, append = self.codec.decode, events.append
        for record in records:
            try:
                append((record, decode(record.value)))
            except DecodeError as exc:
                quarantined.append(Quarantined(record, f"cannot decode: {exc}", self.codec.event_name_of(record.value)))
        return PartitionChunk(tp[0], tp[1], start, records[-1].offset + 1, events, quarantined)

    async def _apply(self, projection: Projection, chunks: list[PartitionChunk]) -> None:
        try:
            await projection.apply(chunks)
            self.applied += sum(c.next_offset - c.start_offset for c in chunks)
            return
        except PoisonError as exc:
            if len(chunks) == 1 and len(chunks[0].events) == 1:
                await self._quarantine_single(projection, chunks[0], str(exc))
                return
        for chunk in chunks:  # find the record at fault: partitions one by one, then halves
            for half in _halves(chunk):
                await self._apply(projection, [half])

    async def _quarantine_single(self, projection: Projection, chunk: PartitionChunk, reason: str) -> None:
        record, event = chunk.events[0]
        entry = Quarantined(record, f"cannot apply: {reason}", event.SCHEMA_NAME)
        log.error("quarantined %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset,
                  event.SCHEMA_NAME, reason)
        await self._publish([entry])
        await self._apply(projection, [PartitionChunk(chunk.topic, chunk.partition, chunk.start_offset,
                                                      chunk.next_offset, (), (*chunk.quarantined, entry))])

    async def _publish(self, entries: list[Quarantined]) -> None:
        # before the commit: a crash may publish an entry twice (harmless), never lose it
        if not entries or not self.settings.publish_quarantine or self.quarantine_topic is None:
            return
        await self.log.append([quarantine_message(self.quarantine_topic, q) for q in entries])


def quarantine_message(topic: str, entry: Quarantined) -> Message:
    r = entry.record
    headers = (("reason", entry.reason.encode()), ("source_topic", r.topic.encode()),
               ("source_partition", str(r.partition).encode()), ("source_offset", str(r.offset).encode()),
               ("event_type", (entry.event_type or "").encode()))
    return Message(topic=topic, value=r.value, key=r.key, headers=headers)


def _halves(chunk: PartitionChunk) -> list[PartitionChunk]:
    """Split a chunk into two consecutive chunks (by offset), each keeping its quarantined records."""
    offsets = sorted({r.offset for r, _ in chunk.events} | {q.record.offset for q in chunk.quarantined})
    if len(offsets) <= 1:
        return [chunk]
    middle = offsets[len(offsets) // 2]
    first = PartitionChunk(chunk.topic, chunk.partition, chunk.start_offset, middle,
                           [e for e in chunk.events if e[0].offset < middle],
                           [q for q in chunk.quarantined if q.record.offset < middle])
    second = PartitionChunk(chunk.topic, chunk.partition, middle, chunk.next_offset,
                            [e for e in chunk.events if e[0].offset >= middle],
                            [q for q in chunk.quarantined if q.record.offset >= middle])
    return [first, second]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def tune_gc_for_batches(young: int = 200_000) -> None:
    """For projector processes: a batch allocates many short-lived dicts, and CPython's default
    young-generation threshold (700) then runs the cyclic collector thousands of times per batch
    over the long-lived objects. Freeze what start-up allocated and collect less often.

    `young` is above what one read-model transaction of the default sizes keeps alive until its
    commit (tens of thousands of row dicts, ops and records, freed by reference counting, not by
    the collector): at 50,000 a collection ran about once per transaction and spent 20-120 ms
    traversing those, ~10 % of replay's CPU; at 200,000 about once per 100,000 events replayed. (The
    resolver keeps 50,000: its state is different.)"""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 50)
