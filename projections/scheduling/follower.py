"""Keep a SchedulingState up to date from the log: start from the newest snapshot (or offset 0), fold
the tail, then follow the log.

A consumer without a group is assigned every partition of the batch, instance and heartbeat topics,
each from the position the snapshot covers (0 without one), so one `getmany` loop serves both the
rebuild and the tail. Only the event types the fold uses are decoded: the fingerprint names the type
first. With snapshots (projections/scheduling/view_snapshots.py), `poll` stores one whenever it is due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from events.catalog import Event
from events.codec import Codec
from events.errors import DecodeError
from events.log import AssignedConsumer, EventLog, Record
from events.topics import Topics
from projections.scheduling.state import FOLDED_EVENT_NAMES, SchedulingState
from projections.scheduling.view_snapshots import ViewSnapshots

log = logging.getLogger(__name__)

Listener = Callable[[Event, bool], None]


class StateFollower:
    """Folds the batch, instance and heartbeat topics into `state`; `listeners` see every folded event."""

    def __init__(self, log_: EventLog, topics: Topics, name: str, codec: Codec | None = None,
                 state: SchedulingState | None = None, snapshots: ViewSnapshots | None = None) -> None:
        self._log = log_
        self._topics = topics
        self.name = name  # for logs: which view this is
        self._codec = codec or Codec()
        self.state = state or SchedulingState()
        self.snapshots = snapshots
        self.listeners: list[Listener] = []
        self._consumer: AssignedConsumer | None = None
        self.positions: dict[tuple[str, int], int] = {}
        self.n_skipped_undecodable = 0

    async def start(self) -> None:
        """Position on every partition: where the newest snapshot ends (its state becomes ours), or 0."""
        start: dict[tuple[str, int], int] = {}
        if self.snapshots is not None:
            loaded = await self.snapshots.load()
            if loaded is not None:
                self.state, start = loaded
        positions = {}
        for topic in self._topics.fold_topics:
            for partition in range(await self._log.partitions(topic)):
                positions[(topic, partition)] = start.get((topic, partition), 0)
        self.positions = positions
        self._consumer = await self._log.assigned_consumer(positions)
        if start:
            log.info("view %s starts from a snapshot at %d records folded", self.name, sum(start.values()))

    async def catch_up(self, timeout_s: float | None = None) -> None:
        """Fold everything appended before this call (the rebuild after becoming leader).
        Without a timeout it takes as long as the log needs, logging progress every 10 s."""
        targets = {}
        for topic in self._topics.fold_topics:
            for partition, end in (await self._log.end_offsets(topic)).items():
                if end > 0:
                    targets[(topic, partition)] = end
        started = last_report = time.monotonic()
        while any(self.positions.get(tp, 0) < end for tp, end in targets.items()):
            now = time.monotonic()
            if now - last_report >= 10.0:
                last_report = now
                left = sum(end - self.positions.get(tp, 0) for tp, end in targets.items())
                log.info("rebuilding the scheduling view: %d records folded, %d to go", self.state.events_applied, left)
            if timeout_s is not None and now - started > timeout_s:
                behind = {f"{t}[{p}]": end - self.positions.get((t, p), 0) for (t, p), end in targets.items()
                          if self.positions.get((t, p), 0) < end}
                raise TimeoutError(f"replay did not reach the end of the log in {timeout_s:.0f}s; behind: {behind}")
            await self.poll(timeout_ms=200)

    async def poll(self, timeout_ms: int = 500, max_records: int = 5000) -> bool:
        """Fold the next records; True when something may have become schedulable or freed."""
        assert self._consumer is not None, "call start() first"
        records = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        woke = False
        for record in records:
            woke |= self._fold(record)
        if self.snapshots is not None:  # also when quiet: the last records before a lull get their snapshot
            self.snapshots.schedule.folded(len(records))
            if self.snapshots.schedule.due():
                await self.snapshots.save(self.state, self.positions)
        return woke

    def _fold(self, record: Record) -> bool:
        self.positions[(record.topic, record.partition)] = record.offset + 1
        if self._codec.event_name_of(record.value) not in FOLDED_EVENT_NAMES:
            return False
        try:
            event = self._codec.decode(record.value)
        except DecodeError as exc:  # the resolver quarantines bad records; the scheduler just skips them
            self.n_skipped_undecodable += 1
            log.warning("skipping undecodable record %s[%d]@%d: %s", record.topic, record.partition,
                        record.offset, exc)
            return False
        woke = self.state.apply(event)
        for listener in self.listeners:
            listener(event, woke)
        return woke

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
