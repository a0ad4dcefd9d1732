"""Event log throughput against a real Apache Kafka broker: produce (append, acks=all, idempotent)
and consume (read by partition; group consumer) in events/s, raw bytes and through the codec.

    python tests/bench/bench_log.py [--events 100000] [--bootstrap HOST:PORT]

Without --bootstrap (or SQUALL_TEST_KAFKA_BOOTSTRAP) it starts its own broker via deploy.kafka
in a temporary directory and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.kafka import KafkaBroker  # noqa: E402
from events.catalog import JobBecameReady  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.kafka_log import KafkaEventLog  # noqa: E402
from events.log import Message  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402


def _event(seq: int) -> JobBecameReady:
    return JobBecameReady(event_id=f"ready:{seq}", occurred_at=1_764_000_000_000 + seq, producer="bench",
                          batch_id=seq % 101 + 1, job_id=seq, reason="parents_complete")


async def _read_everything(log: KafkaEventLog, topic: str, codec: Codec | None) -> int:
    count = 0
    for partition, end in (await log.end_offsets(topic)).items():
        offset = 0
        while offset < end:
            records = await log.read(topic, partition, offset, timeout_ms=5000)
            if codec is not None:
                for r in records:
                    codec.decode(r.value)
            count += len(records)
            offset = records[-1].offset + 1
    return count


async def _consume_group(log: KafkaEventLog, topic: str, expected: int) -> int:
    consumer = await log.group_consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic])
    count = 0
    try:
        while count < expected:
            count += len(await consumer.getmany(timeout_ms=1000, max_records=10_000))
    finally:
        await consumer.close()
    return count


async def run(bootstrap: str, n: int, chunk: int) -> None:
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}.")
    log = await KafkaEventLog.connect(bootstrap, client_id="bench")
    codec = Codec()
    try:
        await log.create_topics(topics.specs())
        payload = codec.encode(_event(0))
        raw = [Message(topics.batch, payload, key=str(i % 101).encode()) for i in range(n)]
        t = time.perf_counter()
        for i in range(0, n, chunk):
            await log.append(raw[i:i + chunk])
        print(f"append raw {len(payload)}-byte messages ({chunk}/call): {n / (time.perf_counter() - t):>10,.0f} events/s")

        publisher = Publisher(log, topics, codec)
        events = [_event(i) for i in range(n)]
        t = time.perf_counter()
        for i in range(0, n, chunk):
            await publisher.publish(events[i:i + chunk])
        print(f"publish events (encode + append):        {n / (time.perf_counter() - t):>10,.0f} events/s")

        t = time.perf_counter()
        count = await _read_everything(log, topics.batch, None)
        print(f"read by partition (raw):                 {count / (time.perf_counter() - t):>10,.0f} events/s")
        t = time.perf_counter()
        count = await _read_everything(log, topics.batch, codec)
        print(f"read by partition + decode:              {count / (time.perf_counter() - t):>10,.0f} events/s")
        t = time.perf_counter()
        count = await _consume_group(log, topics.batch, 2 * n)
        print(f"group consumer (incl. join, raw):        {count / (time.perf_counter() - t):>10,.0f} events/s")
        t = time.perf_counter()
        await log.append([Message(topics.control, b"x", key=b"control")])
        print(f"single append latency (acks=all):        {(time.perf_counter() - t) * 1000:>10.1f} ms")
    finally:
        await log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--bootstrap", default=os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP"))
    args = parser.parse_args()
    if args.bootstrap:
        asyncio.run(run(args.bootstrap, args.events, args.chunk))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="squall-bench-kafka-"))
    broker = KafkaBroker(data_dir)
    try:
        t = time.perf_counter()
        bootstrap = broker.start()
        print(f"broker start (cached jars):              {time.perf_counter() - t:>10.1f} s")
        asyncio.run(run(bootstrap, args.events, args.chunk))
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
