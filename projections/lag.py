"""How far each Postgres projection is behind the log: end offsets minus the offsets it stored."""

from __future__ import annotations

import asyncio

import psycopg

from events.kafka_security import KafkaSecurity


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
