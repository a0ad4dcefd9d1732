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

from events import catalog as ev
from events.catalog import Event
from events.codec import Codec
from events.core.retries import describe_retry
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


class DecisionWords:
    """What the decisions among a job's events said, in words (`squall audit` prints them under each
    event): the placement's resources, how an attempt ended, why it was retried and with what, how
    the job ended. Fed the events in log order, it remembers each attempt's memory and exit code."""

    def __init__(self) -> None:
        self._memory: dict[tuple[int, str], int] = {}
        self._exit_code: dict[tuple[int, str], int | None] = {}

    def __call__(self, e: Event) -> str | None:
        if isinstance(e, ev.JobCreated) and e.retry_policy is not None:
            return "retry policy: " + _policy_words(e.retry_policy)
        if isinstance(e, ev.JobAttemptAccepted):
            self._memory[(e.job_id, e.attempt_id)] = e.memory_bytes
            return (f"accepted ({e.state}) on {e.instance_name}: {e.cores_mcpu} mCPU, {_size(e.memory_bytes)}, "
                    f"{e.storage_gib} GiB storage")
        if isinstance(e, ev.JobAttemptRefused):
            return f"refused: {e.reason}"
        if isinstance(e, ev.JobAttemptCompleted):
            self._exit_code[(e.job_id, e.attempt_id)] = e.exit_code
            ended = f"ended {e.outcome}" + (f" ({e.failure_cause})" if e.failure_cause else "")
            return ended + (f", exit code {e.exit_code}" if e.exit_code is not None else "")
        if isinstance(e, ev.JobBecameReady) and e.after_attempt_id is not None:
            if e.retry_rule is None:  # written before retries said why
                return "retry of a system failure"
            key = (e.job_id, e.after_attempt_id)
            return f"retry ({e.retry_rule}): " + describe_retry(
                e.retry_rule, e.retry_cause, exit_code=self._exit_code.get(key), memory_bytes=e.memory_bytes,
                previous_memory_bytes=self._memory.get(key), preemptible=e.preemptible)
        if isinstance(e, ev.JobCompleted):
            return f"completed {e.state} after {e.n_attempts} attempt(s)" + (f": {e.reason}" if e.reason else "")
        return None


def _policy_words(p: ev.RetryPolicy) -> str:
    parts = []
    if p.oom_memory_multiplier is not None:
        parts.append(f"out of memory: memory x {p.oom_memory_multiplier:g} up to {_size(p.oom_max_memory_bytes)}")
    if p.max_preemptions is not None:
        parts.append(f"non-preemptible after {p.max_preemptions} preemption(s)")
    if p.retry_exit_codes:
        parts.append("exit codes " + ", ".join(map(str, p.retry_exit_codes)) + " retried")
    return "; ".join(parts) or "none"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
