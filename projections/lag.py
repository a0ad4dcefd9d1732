"""How far each projection is behind the log: end offsets minus the offsets it stored.

`projection_lag` asks from outside (`squall status`: the stored offsets in PostgreSQL);
`report_lag` runs inside a projection process and reports its own lag every few seconds (the
`squall_projection_lag_events` gauge), from the offsets it has applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

import psycopg

from events.errors import LogError
from events.kafka_security import KafkaSecurity
from events.log import EventLog

logger = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


def stored_offsets(database_url: str) -> dict[str, dict[tuple[str, int], int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT projection, topic, partition, next_offset FROM projection_offsets").fetchall()
    out: dict[str, dict[tuple[str, int], int]] = {}
    for projection, topic, partition, next_offset in rows:
        out.setdefault(projection, {})[(topic, partition)] = next_offset
    return out


async def _end_offsets(bootstrap: str, topics: set[str],
                       security: KafkaSecurity | None) -> dict[tuple[str, int], int]:
    from events.kafka_log import KafkaEventLog

    log = await KafkaEventLog.connect(bootstrap, client_id="squall-lag", security=security, read_only=True)
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for partition, end in (await log.end_offsets(topic)).items():
                ends[(topic, partition)] = end
        return ends
    finally:
        await log.close()


def lag_from(stored: dict[str, dict[tuple[str, int], int]], ends: dict[tuple[str, int], int]) -> dict[str, int]:
    """Per projection, the events in its topics' partitions it has not applied yet."""
    lag: dict[str, int] = {}
    for projection, offsets in stored.items():
        topics = {t for t, _ in offsets}
        lag[projection] = sum(end - offsets.get((t, p), 0) for (t, p), end in ends.items() if t in topics)
    return lag


def projection_lag(bootstrap: str, database_url: str, topic_prefix: str,
                   security: KafkaSecurity | None = None) -> dict[str, int]:
    stored = stored_offsets(database_url)
    topics = {t for offsets in stored.values() for t, _ in offsets if t.startswith(topic_prefix)}
    ends = asyncio.run(_end_offsets(bootstrap, topics, security)) if topics else {}
    return lag_from(stored, ends)


async def report_lag(log: EventLog, positions: Callable[[], Mapping[TopicPartition, int]],
                     report: Callable[[int], None], stop: asyncio.Event, every_s: float = 5.0) -> None:
    """Until `stop`: every `every_s`, report the events between `positions()` (next offset to apply, per
    partition this process owns) and the log's end, summed. Nothing is reported before it owns any."""
    while not stop.is_set():
        owned = dict(positions())
        if owned:
            ends: dict[TopicPartition, int] = {}
            try:
                for topic in sorted({t for t, _ in owned}):
                    ends.update({(topic, p): end for p, end in (await log.end_offsets(topic)).items()})
            except LogError as exc:  # the broker is away: the projection itself says so; try again later
                logger.warning("cannot read the log's end offsets for the lag metric: %s", exc)
            else:
                report(sum(max(0, ends.get(tp, offset) - offset) for tp, offset in owned.items()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
