"""The resolver's loop: a consumer-group member over the batch topic driving ResolverCore.

Per iteration: fetch records; rebuild partitions newly assigned to this member (from the
partition's snapshot when there is one, else from offset 0, then append what its previous owner had
not); step the rest; append every derived event and quarantined record (acks=all; the batch topic's
before the worker assignments, see `_append`); only then commit the consumed offsets.
A crash anywhere repeats work, never loses it: the next owner rebuilds from the log, and
re-derived events carry the same ids, which evolve treats as the duplicates they are.

With snapshots (projections/resolver/snapshots.py), batches evolved since the last snapshot are
stored when one is due, completed batches then leave memory, and an event for one of them brings it
back before it is folded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from events.catalog import Event
from events.codec import Codec
from events.log import EventLog, GroupConsumer, Message
from events.publisher import Publisher
from events.topics import Topics
from projections.resolver.core import Incoming, ResolverCore, StepResult, TopicPartition
from projections.resolver.snapshots import ResolverSnapshots
from projections.runner import Quarantined, quarantine_message
from projections.snapshots.sealed import SnapshotUnusable
from projections.snapshots.store import SnapshotStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolverSettings:
    max_records: int = 5_000  # records folded between two appends: bigger batches, fewer round trips
    poll_timeout_ms: int = 100
    rebuild_chunk: int = 10_000


def group_id(topics: Topics) -> str:
    return f"{topics.prefix}resolver"


class Resolver:
    """Run with `await Resolver(log, topics, producer).run(stop)`; stops when `stop` is set."""

    def __init__(self, log_: EventLog, topics: Topics, producer: str, settings: ResolverSettings | None = None,
                 codec: Codec | None = None, snapshots: ResolverSnapshots | None = None) -> None:
        self.log = log_
        self.topics = topics
        self.settings = settings or ResolverSettings()
        self.publisher = Publisher(log_, topics, codec)
        self.core = ResolverCore(producer, self.publisher.codec)
        self.snapshots = snapshots
        self._refold: set[TopicPartition] = set()  # partitions whose snapshot failed us: from offset 0
        self.records_processed = 0
        self.events_derived = 0

    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to fold, per partition this member owns (its lag is the rest of the log)."""
        return {tp: part.next_offset for tp, part in self.core.partitions.items()}

    async def run(self, stop: asyncio.Event) -> None:
        consumer = await self.log.group_consumer(group_id(self.topics), [self.topics.batch])
        log.info("resolver joined group %s on %s", group_id(self.topics), self.topics.batch)
        try:
            while not stop.is_set():
                await self.iterate(consumer)
            if self.snapshots is not None and self.core.partitions:  # a clean stop leaves no tail to refold
                await self.snapshots.save(self.core, list(self.core.partitions))
        finally:
            await consumer.close()

    async def iterate(self, consumer: GroupConsumer) -> None:
        records = await consumer.getmany(timeout_ms=self.settings.poll_timeout_ms,
                                         max_records=self.settings.max_records)
        derived = await self._follow_assignment(consumer.assignment())
        incoming = self.core.decode(records)
        await self._bring_back(incoming)
        result = self.core.step_decoded(incoming)
        derived += result.derived
        await self._append(derived, result)
        if result.offsets:
            owned = {tp: o for tp, o in result.offsets.items() if tp in self.core.partitions}
            await consumer.commit(owned)
        self.records_processed += len(records)
        self.events_derived += len(derived)
        if self.snapshots is not None:
            self.snapshots.schedule.folded(len(records))
            if self.snapshots.schedule.due():
                await self.snapshots.save(self.core, list(self.core.partitions))

    async def _bring_back(self, incoming: list[Incoming]) -> None:
        """Put batches that left memory back before records about them are folded; a partition whose
        snapshot cannot give them back is dropped here and refolded from offset 0 next iteration."""
        if self.snapshots is None:
            return
        for tp, batch_ids in self.core.wanted_batches(incoming).items():
            try:
                await self.snapshots.bring_back(self.core, {tp: batch_ids})
            except (SnapshotUnusable, SnapshotStoreError) as exc:
                log.error("cannot bring back batches %s of %s[%d] from the snapshot (%s): refolding the partition",
                          sorted(batch_ids)[:5], tp[0], tp[1], exc)
                self.core.release(tp)
                self._refold.add(tp)

    async def _follow_assignment(self, assignment: set[TopicPartition]) -> list[Event]:
        mine = {tp for tp in assignment if tp[0] == self.topics.batch}
        for tp in set(self.core.partitions) - mine:
            log.info("released %s[%d]", *tp)
            self.core.release(tp)
        derived: list[Event] = []
        for tp in sorted(mine - set(self.core.partitions)):
            started = time.monotonic()
            restored = await self._begin(tp)
            try:
                n_records = await self._rebuild(tp)
            except (SnapshotUnusable, SnapshotStoreError) as exc:
                log.error("rebuilding %s[%d] from its snapshot failed (%s); it is refolded from offset 0", *tp, exc)
                continue
            missing = self.core.finish_rebuild(tp)
            log.info("rebuilt %s[%d] from %s and %d records in %.2fs; %d derived events were missing", tp[0], tp[1],
                     "offset 0" if restored is None else f"a snapshot ({restored} active batches)", n_records,
                     time.monotonic() - started, len(missing))
            derived += missing
        return derived

    async def _begin(self, tp: TopicPartition) -> int | None:
        """Own `tp` from its snapshot (returns its active batches), or from offset 0 (None)."""
        restored = None
        if self.snapshots is not None and tp not in self._refold:
            restored = await self.snapshots.restore(self.core, tp)
        if restored is None:
            self.core.begin_rebuild(tp)
            if self.snapshots is not None:
                self.snapshots.stats.refolded_partitions += 1
        self._refold.discard(tp)
        return restored

    async def _rebuild(self, tp: TopicPartition) -> int:
        """Fold the partition from where `_begin` left it to its current end, chunk by chunk (a long
        partition is never held in memory whole; with snapshots, one is taken whenever due, which also
        lets completed batches leave memory). Returns how many records it folded."""
        topic, partition = tp
        end = (await self.log.end_offsets(topic)).get(partition, 0)
        offset = self.core.partitions[tp].next_offset
        n_records = 0
        try:
            while offset < end:
                chunk = await self.log.read(topic, partition, offset, max_records=self.settings.rebuild_chunk,
                                            timeout_ms=1000)
                chunk = [r for r in chunk if r.offset < end]
                if not chunk:
                    continue  # the broker had nothing within the timeout; the records exist, ask again
                incoming = self.core.decode(chunk)
                if self.snapshots is not None:
                    await self.snapshots.bring_back(self.core, self.core.wanted_batches(incoming))
                self.core.fold_rebuilt_decoded(tp, incoming)
                n_records += len(chunk)
                offset = chunk[-1].offset + 1
                if self.snapshots is not None:
                    self.snapshots.schedule.folded(len(chunk))
                    if self.snapshots.schedule.due():
                        await self.snapshots.save(self.core, [tp])
        except (SnapshotUnusable, SnapshotStoreError):
            self.core.release(tp)
            self._refold.add(tp)  # the next iteration starts over from offset 0
            raise
        except BaseException:
            self.core.release(tp)  # half a fold must never be stepped on: the next iteration starts over
            raise
        return n_records

    async def _append(self, derived: list[Event], result: StepResult) -> None:
        """Batch-topic events (verdicts first among them) are stored before any worker assignment is
        appended: a worker acts on an AttemptAssigned, and what it appends must land after the verdict
        that accepted its attempt, so every fold sees the attempt accepted before it starts."""
        messages: list[Message] = [self.publisher.to_message(e) for e in derived if e.TOPIC == "batch"]
        messages += [self._quarantine_message(q) for q in result.quarantined]
        assignments = [self.publisher.to_message(e) for e in derived if e.TOPIC != "batch"]
        if messages:
            await self.log.append(messages)
        if assignments:
            await self.log.append(assignments)

    def _quarantine_message(self, entry: Quarantined) -> Message:
        return quarantine_message(self.topics.quarantine, entry)
