"""100,000 events through the Publisher into the real broker and back: none lost, none
duplicated, and every batch's events in the order they were published."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from events.catalog import JobBecameReady
from events.codec import Codec
from events.kafka_log import KafkaEventLog
from events.publisher import Publisher
from events.topics import Topics

N_EVENTS = 100_000
N_BATCHES = 97
CHUNK = 5_000  # events per publish() call, as a busy front end would append


def _event(seq: int) -> JobBecameReady:
    batch_id = seq % N_BATCHES + 1
    return JobBecameReady(event_id=f"ready:{seq}", occurred_at=1_764_000_000_000 + seq, producer="test",
                          batch_id=batch_id, job_id=seq // N_BATCHES + 1, reason="parents_complete")


@pytest.mark.kafka
@pytest.mark.slow
async def test_100k_events_round_trip_through_kafka(kafka_log: KafkaEventLog, topics: Topics) -> None:
    publisher = Publisher(kafka_log, topics, Codec())
    started = time.monotonic()
    positions = []
    for first in range(0, N_EVENTS, CHUNK):
        positions += await publisher.publish([_event(seq) for seq in range(first, first + CHUNK)])
    produce_s = time.monotonic() - started
    assert len(positions) == N_EVENTS
    assert len(set(positions)) == N_EVENTS  # every event has its own place in the log

    ends = await kafka_log.end_offsets(topics.batch)
    assert sum(ends.values()) == N_EVENTS
    codec = Codec()
    seen: dict[int, list[int]] = defaultdict(list)  # batch -> job ids in log order
    event_ids = set()
    for partition, end in ends.items():
        offset = 0
        while offset < end:
            records = await kafka_log.read(topics.batch, partition, offset, timeout_ms=5000)
            assert records, f"partition {partition} stopped at {offset} of {end}"
            for record in records:
                event = codec.decode(record.value)
                assert record.key == str(event.batch_id).encode()
                event_ids.add(event.event_id)
                seen[event.batch_id].append(event.job_id)
            offset = records[-1].offset + 1

    assert len(event_ids) == N_EVENTS  # none lost, none duplicated
    assert event_ids == {f"ready:{seq}" for seq in range(N_EVENTS)}
    for batch_id, job_ids in seen.items():
        assert job_ids == sorted(job_ids), f"batch {batch_id} out of order"
    print(f"produced {N_EVENTS / produce_s:,.0f} events/s; read back {N_EVENTS} in "
          f"{time.monotonic() - started - produce_s:.1f}s")
