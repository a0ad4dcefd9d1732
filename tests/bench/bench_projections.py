"""Read-model projection numbers against a real Kafka broker and PostgreSQL:

1. live lag: the projector (a subprocess, as in production) while events are appended at a fixed
   rate (default 5,000 events/s): how many events and how many ms it trails the log;
2. replay throughput: rebuilding the read models from offset 0 into a fresh schema (events/s,
   and per CPU-second of this process, which is less sensitive to a busy machine);
3. replay --verify of the live-built tables (differences: none expected).

    python tests/bench/bench_projections.py [--rate 5000] [--seconds 20] [--bootstrap H:P] [--database-url URL]

Without --bootstrap / --database-url (or SQUALL_TEST_KAFKA_BOOTSTRAP / SQUALL_TEST_DATABASE_URL)
it starts its own broker and PostgreSQL in a temporary directory and stops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg  # noqa: E402

from deploy.kafka import KafkaBroker  # noqa: E402
from deploy.postgres import EmbeddedPostgres, create_database  # noqa: E402
from events.kafka_log import KafkaEventLog  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402
from projections.db import READMODEL_MIGRATIONS, migrate  # noqa: E402
from projections.replay import rebuild, replay_and_verify  # noqa: E402
from projections.runner import RunnerSettings, tune_gc_for_batches  # noqa: E402
from tests.fakes.streams import StreamShape, build_stream  # noqa: E402


def applied(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


async def live_lag(log: KafkaEventLog, topics: Topics, url: str, bootstrap: str, events: list, rate: int) -> None:
    projector = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "projections.readmodel", "--bootstrap", bootstrap, "--topic-prefix", topics.prefix,
        "--database-url", url, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    publisher = Publisher(log, topics)
    messages = [publisher.to_message(e) for e in events]
    published_at: list[float] = []  # time each event was appended
    lag_events: list[int] = []
    lag_ms: list[float] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.5)
            done, now = applied(url), time.monotonic()
            if len(published_at) > done:
                lag_events.append(len(published_at) - done)
                lag_ms.append((now - published_at[done]) * 1000)
            else:
                lag_events.append(0)
                lag_ms.append(0.0)

    try:
        while applied(url) == 0 and projector.returncode is None:  # wait for start-up (it reads nothing yet)
            await log.append(messages[:1])
            published_at.append(time.monotonic())
            await asyncio.sleep(0.2)
        sampler = asyncio.create_task(sample())
        step = max(1, rate // 20)  # 20 appends a second
        started = time.monotonic()
        for i in range(len(published_at), len(messages), step):
            await log.append(messages[i:i + step])
            published_at.extend([time.monotonic()] * len(messages[i:i + step]))
            delay = started + (i + step) / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        sent = time.monotonic()
        achieved = (len(messages) - 1) / (sent - started)
        while applied(url) < len(published_at):
            await asyncio.sleep(0.05)
        caught_up = time.monotonic() - sent
        sampler.cancel()
    finally:
        projector.terminate()
        await projector.wait()
    print(f"live: appended {len(messages):,} events at {achieved:,.0f} events/s (target {rate:,})")
    print(f"live lag (events): median {statistics.median(lag_events):,.0f}, p95 "
          f"{sorted(lag_events)[int(len(lag_events) * 0.95)]:,}, max {max(lag_events):,}")
    print(f"live lag (ms behind the append): median {statistics.median(lag_ms):,.0f}, p95 "
          f"{sorted(lag_ms)[int(len(lag_ms) * 0.95)]:,.0f}, max {max(lag_ms):,.0f}")
    print(f"live: caught up {caught_up * 1000:,.0f} ms after the last append")


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="squall-bench-projections-"))
    broker = server = None
    try:
        bootstrap = args.bootstrap or os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP")
        if not bootstrap:
            broker = KafkaBroker(tmp / "kafka")
            bootstrap = broker.start()
        pg = args.database_url or os.environ.get("SQUALL_TEST_DATABASE_URL")
        if not pg:
            server = EmbeddedPostgres(tmp / "pg")
            pg = server.start()
        url = create_database(pg, f"bench_{uuid.uuid4().hex[:10]}")
        migrate(url, [READMODEL_MIGRATIONS])
        topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}.")
        log = await KafkaEventLog.connect(bootstrap, client_id="bench-projections")
        await log.create_topics(topics.specs())
        n_events = args.rate * args.seconds
        jobs_per_batch = 200
        shape = StreamShape(n_batches=max(1, n_events // (jobs_per_batch * 6)), jobs_per_batch=jobs_per_batch,
                            n_instances=16)
        events = build_stream(shape, seed=1).events[:n_events]
        print(f"stream: {len(events):,} events ({shape.n_batches} batches x {jobs_per_batch} jobs), "
              f"batch topic {topics.batch_partitions} partitions")

        await live_lag(log, topics, url, bootstrap, events, args.rate)

        tune_gc_for_batches()
        cpu, wall = time.process_time(), time.perf_counter()
        result = await rebuild(log, topics, url, "bench_replay", settings=RunnerSettings(max_batch=args.max_batch,
                                                                                          workers=args.workers))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"replay from offset 0 into Postgres, 1 process: {result.events:,} events in {wall:.1f} s = "
              f"{result.events / wall:,.0f} events/s ({result.events / cpu:,.0f} events per CPU-second of the "
              f"projector; max_batch {args.max_batch}, {args.workers} workers; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        for processes in args.processes:
            result = await rebuild(log, topics, url, "bench_replay", processes=processes,
                                   settings=RunnerSettings(max_batch=args.max_batch, workers=args.workers))
            print(f"replay from offset 0 into Postgres, {processes} processes: {result.events:,} events in "
                  f"{result.seconds:.1f} s = {result.events / result.seconds:,.0f} events/s (load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        verified = await replay_and_verify(log, topics, url, settings=RunnerSettings(max_batch=args.max_batch))
        print(f"replay --verify of the live-built tables: {len(verified.differences)} differences over "
              f"{verified.rows_compared:,} rows")
        await log.close()
    finally:
        if broker is not None:
            broker.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5_000, help="live append rate, events/s")
    parser.add_argument("--seconds", type=int, default=20, help="how long to append at that rate")
    parser.add_argument("--max-batch", type=int, default=10_000, help="replay: records per transaction")
    parser.add_argument("--workers", type=int, default=2, help="replay: parallel workers (per process)")
    parser.add_argument("--processes", type=int, nargs="*", default=[2],
                        help="replay also with this many projector processes (each a share of the partitions)")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
