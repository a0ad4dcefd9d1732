"""The audit trail of a batch or job, and an as-of view of a batch at an earlier point of the log.

The audit index (table `audit`) says where each of a batch's events sits in the log; the events
themselves are read back from the log by offset. The as-of view folds those events, up to an
offset or a time, with the same pure fold the live projection uses, so it shows exactly what the
read models showed then (from event data, never from a clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from events.catalog import Event
from events.codec import Codec
from events.errors import DecodeError
from events.log import EventLog, Position
from projections.cost import PriceTable
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel

_MIN_TIME_MS = 100_000_000_000  # 1973: an --at at or above this is a time in ms, below it an offset


@dataclass(frozen=True)
class AuditEntry:
    batch_id: int
    job_id: int | None
    topic: str
    partition: int
    offset: int
    event_type: str
    event_id: str
    occurred_at: int
    causation_id: str | None
    producer: str
    attempt_id: str | None


@dataclass(frozen=True)
class AsOf:
    """`offset`: the last offset included; `time_ms`: events that occurred at or before it."""

    offset: int | None = None
    time_ms: int | None = None

    def includes(self, entry: AuditEntry) -> bool:
        if self.offset is not None:
            return entry.offset <= self.offset
        return self.time_ms is None or entry.occurred_at <= self.time_ms


def parse_as_of(text: str) -> AsOf:
    """An offset (a small integer), a time in ms since the epoch, or an ISO-8601 time."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return AsOf(time_ms=value) if value >= _MIN_TIME_MS else AsOf(offset=value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--at {text!r}: give a log offset (e.g. 1234), a time in ms since the epoch, "
                         "or an ISO time (e.g. 2026-11-25T13:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return AsOf(time_ms=int(moment.timestamp() * 1000))


def history(conn: psycopg.Connection, batch_id: int, job_id: int | None = None) -> list[AuditEntry]:
    """The batch's events (or one job's) in log order, from the audit index."""
    query = ('SELECT batch_id, job_id, topic, partition, "offset", event_type, event_id, occurred_at, '
             "causation_id, producer, attempt_id FROM audit WHERE batch_id = %s")
    params: list[Any] = [batch_id]
    if job_id is not None:
        query += " AND job_id = %s"
        params.append(job_id)
    rows = conn.execute(query + ' ORDER BY topic, partition, "offset"', params).fetchall()
    return [AuditEntry(*row) for row in rows]


async def read_events(log: EventLog, entries: Sequence[AuditEntry],
                      codec: Codec | None = None) -> dict[tuple[str, int, int], Event]:
    """The events at the entries' positions, read back from the log, by (topic, partition, offset)."""
    codec = codec or Codec()
    wanted = {(e.topic, e.partition, e.offset) for e in entries}
    events: dict[tuple[str, int, int], Event] = {}
    for topic, partition in sorted({(e.topic, e.partition) for e in entries}):
        offsets = sorted(o for t, p, o in wanted if (t, p) == (topic, partition))
        position, last = offsets[0], offsets[-1]
        while position <= last:
            records = await log.read(topic, partition, position, max_records=5_000, timeout_ms=2_000)
            if not records:
                raise RuntimeError(f"{topic}[{partition}] has no record at offset {position}: the log was "
                                   "truncated (retention) or this is another cluster")
            for record in records:
                if (topic, partition, record.offset) in wanted:
                    try:
                        events[(topic, partition, record.offset)] = codec.decode(record.value)
                    except DecodeError:
                        continue  # quarantined; the audit index never lists it
            position = records[-1].offset + 1
    return events


async def as_of(log: EventLog, conn: psycopg.Connection, batch_id: int, at: AsOf,
                prices: PriceTable | None = None) -> tuple[ReadModel, list[AuditEntry]]:
    """The read models of one batch as they were at `at`, and the entries that were folded."""
    entries = [e for e in history(conn, batch_id) if at.includes(e)]
    model = ReadModel(prices)
    events = await read_events(log, entries)
    for entry in entries:
        event = events.get((entry.topic, entry.partition, entry.offset))
        if event is not None:
            model.apply_all(convert(event, Position(entry.topic, entry.partition, entry.offset)))
    return model, entries


def iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
