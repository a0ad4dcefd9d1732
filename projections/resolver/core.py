"""The dependency resolver's processing logic, without a broker: records in, events to append out.

The state of each owned partition of the batch topic is exactly the fold of that partition's
log up to `next_offset` — derived events are NOT applied when derived, only when they come back
from the log. That is the one way the resolver's view cannot drift from what every other
projection folds: another producer's event may land between our reaction and our appended
event (an SJ before our JobCancelled), and the log's order is the order that counts.

To avoid deriving the same event twice while it travels, derived batch events are kept "in
flight" (by event id) until the log hands them back. Assignment events never come back (other
topic), so recent ones are remembered in a bounded set; a repeat after that (a restart, or
eviction) is harmless: same event id, and the worker runs an attempt at most once.

Snapshots (projections/resolver/snapshots.py drives them): a partition can start from a snapshot
(`begin_restore`) instead of offset 0; `take_changes` hands over the batches evolved since the last
snapshot; a quiescent batch (complete, nothing left to derive) leaves memory once stored (`evict`) and
is brought back (`adopt`) before an event for it is folded. The caller finds which batches to bring
back with `wanted_batches` over records decoded once (`decode`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from events.catalog import Event
from events.codec import Codec
from events.core.lifecycle import BATCH_LIFECYCLE_EVENTS, BatchState, evolve, react
from events.errors import DecodeError, UnprojectableEvent
from events.log import Record
from projections.runner import Quarantined

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
MAX_REMEMBERED_ASSIGNMENTS = 200_000


class IdBitmap:
    """A set of small non-negative ints (batch ids are dense) at one bit each."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, n: int) -> None:
        byte = n >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))  # grow geometrically
        self._bits[byte] |= 1 << (n & 7)

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int) or n < 0:
            return False
        byte = n >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (n & 7)))


@dataclass
class PartitionState:
    """One owned partition: its batches, folded up to next_offset, and what we await from it."""

    next_offset: int = 0
    batches: dict[int, BatchState] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)  # batch ids evolve touched since the last reaction
    in_flight: set[str] = field(default_factory=set)  # derived event ids appended, not yet read back
    undecodable: set[int] = field(default_factory=set)  # offsets skipped while rebuilding
    changed: set[int] = field(default_factory=set)  # batch ids evolved since the last snapshot took them
    # batches brought back from a snapshot row written further on than we have folded (another owner's):
    # their events below that offset are in the state already
    covered: dict[int, int] = field(default_factory=dict)
    # restored from a snapshot: any batch not in memory may have a stored row (a previous owner may have
    # dropped it); folded from offset 0: only the batches this owner dropped have (trustworthy) rows
    restored: bool = False
    evicted: IdBitmap = field(default_factory=IdBitmap)


@dataclass(slots=True)
class Incoming:
    """A record and its event, decoded once (event None: undecodable, `error` says why)."""

    record: Record
    event: Event | None
    error: str | None = None


@dataclass
class StepResult:
    """What one step asks the loop to do: append `derived` and `quarantined`, then commit `offsets`."""

    derived: list[Event] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


class ResolverCore:
    """Folds owned partitions of the batch topic and derives what the lifecycle calls for."""

    def __init__(self, producer: str, codec: Codec | None = None) -> None:
        self.producer = producer
        self.codec = codec or Codec()
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self._sent_assignments: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first

    # --- ownership --------------------------------------------------------------------------
    def rebuild(self, tp: TopicPartition, records: Iterable[Record]) -> list[Event]:
        """Take ownership of a partition: fold its whole log (from offset 0), then derive whatever is
        missing — after a crash or a rebalance, exactly what the previous owner had not appended yet."""
        self.begin_rebuild(tp)
        self.fold_rebuilt(tp, records)
        return self.finish_rebuild(tp)

    # The same in steps, so the loop can stream a long partition in chunks instead of holding it.
    def begin_rebuild(self, tp: TopicPartition) -> None:
        self.partitions[tp] = PartitionState()

    def begin_restore(self, tp: TopicPartition, next_offset: int, batches: dict[int, BatchState]) -> None:
        """Take ownership from a snapshot: `batches` (the active ones) are the fold up to next_offset."""
        self.partitions[tp] = PartitionState(next_offset=next_offset, batches=batches, restored=True)

    def fold_rebuilt(self, tp: TopicPartition, records: Iterable[Record]) -> None:
        self.fold_rebuilt_decoded(tp, self.decode(records))

    def fold_rebuilt_decoded(self, tp: TopicPartition, incoming: Iterable[Incoming]) -> None:
        part = self.partitions[tp]
        for item in incoming:
            record, event = item.record, item.event
            part.next_offset = record.offset + 1
            if event is None:
                part.undecodable.add(record.offset)  # quarantined when the group consumer delivers it
                continue
            if not self._covered(part, event, record.offset):
                self._evolve(part, event)

    def finish_rebuild(self, tp: TopicPartition) -> list[Event]:
        part = self.partitions[tp]
        for state in part.batches.values():
            state.mark_all_dirty()
        part.dirty.update(part.batches)
        return self._react(part)

    def release(self, tp: TopicPartition) -> None:
        """The partition went to another member of the group: forget it (it will rebuild)."""
        self.partitions.pop(tp, None)

    # --- the live step ------------------------------------------------------------------------
    def step(self, records: Sequence[Record]) -> StepResult:
        """Fold new records (of owned partitions, in order per partition), then react once per
        touched batch. Records below a partition's next_offset were folded by the rebuild already."""
        return self.step_decoded(self.decode(records))

    def step_decoded(self, incoming: Sequence[Incoming]) -> StepResult:
        result = StepResult()
        touched: dict[TopicPartition, PartitionState] = {}
        for item in incoming:
            record = item.record
            tp = (record.topic, record.partition)
            part = self.partitions.get(tp)
            if part is None:
                continue  # not ours (anymore): its new owner rebuilds it
            if record.offset < part.next_offset:
                if record.offset in part.undecodable:
                    part.undecodable.discard(record.offset)
                    result.quarantined.append(self._quarantine(record, "cannot decode (found while rebuilding)"))
                continue
            part.next_offset = record.offset + 1
            result.offsets[tp] = part.next_offset
            problem = self._apply(part, item)
            if problem is not None:
                result.quarantined.append(problem)
            touched[tp] = part
        for part in touched.values():
            result.derived += self._react(part)
        return result

    def _apply(self, part: PartitionState, item: Incoming) -> Quarantined | None:
        record, event = item.record, item.event
        if event is None:
            return self._quarantine(record, f"cannot decode: {item.error}")
        if type(event) not in BATCH_LIFECYCLE_EVENTS:
            return self._quarantine(record, f"{event.SCHEMA_NAME} does not belong on the batch topic", event)
        batch_id: int = event.batch_id  # type: ignore[union-attr]
        if batch_id not in part.batches and event.SCHEMA_NAME != "BatchCreated":
            part.in_flight.discard(event.event_id)
            return self._quarantine(record, f"batch {batch_id} was never created", event)
        if self._covered(part, event, record.offset):
            return None
        try:
            self._evolve(part, event)
        except UnprojectableEvent as exc:  # what the event says is impossible: keep the evidence, go on
            part.changed.add(batch_id)  # evolve may have changed part of the batch before it refused
            return self._quarantine(record, f"cannot apply: {exc}", event)
        return None  # anything else evolve raises is a bug: it crashes the resolver, loudly

    def _evolve(self, part: PartitionState, event: Event) -> None:
        batch_id: int = event.batch_id  # type: ignore[union-attr]
        state = evolve(part.batches.get(batch_id), event)
        if state is not None:
            part.batches[batch_id] = state
            part.dirty.add(batch_id)
            part.changed.add(batch_id)
        part.in_flight.discard(event.event_id)

    @staticmethod
    def _covered(part: PartitionState, event: Event, offset: int) -> bool:
        """True for an event a batch brought back from a snapshot holds already."""
        if not part.covered:
            return False
        batch_id = getattr(event, "batch_id", None)
        below = part.covered.get(batch_id)  # type: ignore[arg-type]
        if below is None:
            return False
        if offset < below:
            part.in_flight.discard(event.event_id)
            return True
        del part.covered[batch_id]  # type: ignore[arg-type]  # past it: the batch folds as any other
        return False

    def _react(self, part: PartitionState) -> list[Event]:
        out: list[Event] = []
        for batch_id in sorted(part.dirty):
            state = part.batches[batch_id]
            for event in react(state, self.producer):
                if event.TOPIC == "batch":
                    if event.event_id in part.in_flight:
                        continue
                    part.in_flight.add(event.event_id)
                else:
                    if event.event_id in self._sent_assignments:
                        continue
                    self._remember_assignment(event.event_id)
                out.append(event)
            state.clear_dirty()
        part.dirty.clear()
        return out

    def _remember_assignment(self, event_id: str) -> None:
        sent = self._sent_assignments
        sent[event_id] = None
        if len(sent) > MAX_REMEMBERED_ASSIGNMENTS:
            del sent[next(iter(sent))]

    def _quarantine(self, record: Record, reason: str, event: Event | None = None) -> Quarantined:
        log.error("quarantined %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
        name = event.SCHEMA_NAME if event is not None else self.codec.event_name_of(record.value)
        return Quarantined(record, reason, name)

    # --- snapshots ----------------------------------------------------------------------------
    def decode(self, records: Iterable[Record]) -> list[Incoming]:
        out: list[Incoming] = []
        decode = self.codec.decode
        for record in records:
            try:
                out.append(Incoming(record, decode(record.value)))
            except DecodeError as exc:
                out.append(Incoming(record, None, str(exc)))
        return out

    def wanted_batches(self, incoming: Iterable[Incoming]) -> dict[TopicPartition, set[int]]:
        """Batches named by records still to fold in owned partitions that are not in memory: the
        caller brings back those a snapshot holds (`adopt`) before folding the records."""
        wanted: dict[TopicPartition, set[int]] = {}
        for item in incoming:
            event = item.event
            if event is None or type(event) not in BATCH_LIFECYCLE_EVENTS:
                continue
            record = item.record
            part = self.partitions.get((record.topic, record.partition))
            if part is None or record.offset < part.next_offset:
                continue
            batch_id: int = event.batch_id  # type: ignore[union-attr]
            if batch_id not in part.batches and (part.restored or batch_id in part.evicted):
                wanted.setdefault((record.topic, record.partition), set()).add(batch_id)
        return wanted

    def adopt(self, tp: TopicPartition, batch_id: int, state: BatchState, as_of: int) -> None:
        """Bring back a batch from its snapshot row: the fold of its events below `as_of`."""
        part = self.partitions[tp]
        part.batches[batch_id] = state
        if as_of > part.next_offset:
            part.covered[batch_id] = as_of

    def take_changes(self, tp: TopicPartition) -> tuple[int, dict[int, BatchState]]:
        """(next_offset, the batches evolved since the last call): what a snapshot must write."""
        part = self.partitions[tp]
        changed = {b: part.batches[b] for b in sorted(part.changed) if b in part.batches}
        part.changed = set()
        return part.next_offset, changed

    def keep_changes(self, tp: TopicPartition, batch_ids: Iterable[int]) -> None:
        """A snapshot taken with `take_changes` was not stored: the next one writes them again."""
        part = self.partitions.get(tp)
        if part is not None:
            part.changed.update(b for b in batch_ids if b in part.batches)

    def is_quiescent(self, state: BatchState) -> bool:
        """Complete, every update committed, its completion and verdicts in the log, nothing to derive:
        only an event of someone else (a late duplicate, a new update) can change it now."""
        return (state.closed and state.complete and state.completed_n_jobs == state.n_jobs
                and not state.verdicts_due and all(u.committed for u in state.updates.values())
                and not react(state, self.producer, everything=True))

    def evict(self, tp: TopicPartition, batch_ids: Iterable[int]) -> int:
        """Drop stored quiescent batches from memory (unless evolved since they were stored)."""
        part = self.partitions.get(tp)
        if part is None:
            return 0
        n = 0
        for batch_id in batch_ids:
            if batch_id not in part.changed and part.batches.pop(batch_id, None) is not None:
                part.dirty.discard(batch_id)
                part.covered.pop(batch_id, None)
                part.evicted.add(batch_id)
                n += 1
        return n

    # --- inspection ---------------------------------------------------------------------------
    def batch(self, batch_id: int) -> BatchState | None:
        for part in self.partitions.values():
            if batch_id in part.batches:
                return part.batches[batch_id]
        return None
