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


@dataclass
class PartitionState:
    """One owned partition: its batches, folded up to next_offset, and what we await from it."""

    next_offset: int = 0
    batches: dict[int, BatchState] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)  # batch ids evolve touched since the last reaction
    in_flight: set[str] = field(default_factory=set)  # derived event ids appended, not yet read back
    undecodable: set[int] = field(default_factory=set)  # offsets skipped while rebuilding


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

    def fold_rebuilt(self, tp: TopicPartition, records: Iterable[Record]) -> None:
        part = self.partitions[tp]
        for record in records:
            part.next_offset = record.offset + 1
            try:
                event = self.codec.decode(record.value)
            except DecodeError:
                part.undecodable.add(record.offset)  # quarantined when the group consumer delivers it
                continue
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
        result = StepResult()
        touched: dict[TopicPartition, PartitionState] = {}
        for record in records:
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
            problem = self._apply(part, record)
            if problem is not None:
                result.quarantined.append(problem)
            touched[tp] = part
        for part in touched.values():
            result.derived += self._react(part)
        return result

    def _apply(self, part: PartitionState, record: Record) -> Quarantined | None:
        try:
            event = self.codec.decode(record.value)
        except DecodeError as exc:
            return self._quarantine(record, f"cannot decode: {exc}")
        if type(event) not in BATCH_LIFECYCLE_EVENTS:
            return self._quarantine(record, f"{event.SCHEMA_NAME} does not belong on the batch topic", event)
        batch_id: int = event.batch_id  # type: ignore[union-attr]
        if batch_id not in part.batches and event.SCHEMA_NAME != "BatchCreated":
            part.in_flight.discard(event.event_id)
            return self._quarantine(record, f"batch {batch_id} was never created", event)
        try:
            self._evolve(part, event)
        except UnprojectableEvent as exc:  # what the event says is impossible: keep the evidence, go on
            return self._quarantine(record, f"cannot apply: {exc}", event)
        return None  # anything else evolve raises is a bug: it crashes the resolver, loudly

    def _evolve(self, part: PartitionState, event: Event) -> None:
        batch_id: int = event.batch_id  # type: ignore[union-attr]
        state = evolve(part.batches.get(batch_id), event)
        if state is not None:
            part.batches[batch_id] = state
            part.dirty.add(batch_id)
        part.in_flight.discard(event.event_id)

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

    # --- inspection ---------------------------------------------------------------------------
    def batch(self, batch_id: int) -> BatchState | None:
        for part in self.partitions.values():
            if batch_id in part.batches:
                return part.batches[batch_id]
        return None
