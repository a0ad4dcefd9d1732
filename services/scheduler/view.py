"""Keep a SchedulingState up to date from the log: replay from offset 0, then tail.

A private consumer group (unique id, never committed) subscribed to the batch, instance and heartbeat topics
starts every partition at the earliest offset, so one `getmany` loop serves both the rebuild and
the tail. Only the event types the fold uses are decoded: the fingerprint names the type first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from events.catalog import Event
from events.codec import Codec
from events.errors import DecodeError
from events.log import EventLog, GroupConsumer, Record
from events.topics import Topics
from projections.scheduling.state import FOLDED_EVENT_NAMES, SchedulingState

log = logging.getLogger(__name__)

Listener = Callable[[Event, bool], None]


class StateFollower:
    """Folds the batch, instance and heartbeat topics into `state`; `listeners` see every folded event."""

    def __init__(self, log_: EventLog, topics: Topics, group_id: str, codec: Codec | None = None,
                 state: SchedulingState | None = None) -> None:
        self._log = log_
        self._topics = topics
        self._group_id = group_id
        self._codec = codec or Codec()
        self.state = state or SchedulingState()
        self.listeners: list[Listener] = []
        self._consumer: GroupConsumer | None = None
        self.positions: dict[tuple[str, int], int] = {}
        self.n_skipped_undecodable = 0

    async def start(self) -> None:
        self._consumer = await self._log.group_consumer(self._group_id, list(self._topics.fold_topics))

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
