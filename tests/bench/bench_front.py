"""Front end throughput and latency: jobs accepted per second through create-fast with 1024-job
bunches, and p50/p99 latency of one create-fast call — against the memory log and the real broker.

    python tests/bench/bench_front.py [--calls 30] [--concurrency 2] [--bootstrap HOST:PORT]
                                      [--database-url postgresql://...] [--skip-kafka]

The app runs in-process (httpx over ASGI: no socket), so the numbers are the front end's own
work: JSON parsing, validation and resource resolution, planning, Avro encoding, the two
PostgreSQL transactions and the append (acks=all against Kafka). Without --bootstrap /
--database-url (or SQUALL_TEST_KAFKA_BOOTSTRAP / SQUALL_TEST_DATABASE_URL) it starts its own
broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
from psycopg_pool import AsyncConnectionPool  # noqa: E402

from deploy.kafka import KafkaBroker  # noqa: E402
from deploy.postgres import EmbeddedPostgres, create_database, drop_database  # noqa: E402
from events.kafka_log import KafkaEventLog  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.memory_log import MemoryEventLog  # noqa: E402
from events.objectstore import InMemoryObjectStore  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402
from services.front.asgi_app import create_app  # noqa: E402
from services.front.front_deps import FrontDeps  # noqa: E402
from services.front.startup import apply_migrations  # noqa: E402
from services.front.users import create_user  # noqa: E402
from services.jobdata import JobData  # noqa: E402

BUNCH = 1024


def _bunch() -> list[dict]:
    """1024 jobs as the Hail client sends them: a fan-in DAG with resources and attributes."""
    jobs = []
    for i in range(1, BUNCH + 1):
        jobs.append({
            "always_run": False, "n_max_attempts": 20, "always_copy_output": False, "job_id": i,
            "absolute_parent_ids": [], "in_update_parent_ids": [i - 1] if i > 1 and i % 8 == 0 else [],
            "process": {"type": "docker", "image": "ubuntu:24.04", "command": ["bash", "-c", f"echo job {i}"]},
            "in_update_job_group_id": 0, "resources": {"cpu": "250m", "memory": "standard"},
            "attributes": {"name": f"job-{i}"}, "env": [{"name": "I", "value": str(i)}],
        })
    return jobs


async def _measure(label: str, db_url: str, log: EventLog, topics: Topics, calls: int, concurrency: int) -> None:
    await log.create_topics(topics.specs())
    pool = AsyncConnectionPool(db_url, min_size=concurrency, max_size=concurrency * 2 + 2, open=False)
    await pool.open(wait=True)
    async with pool.connection() as conn:
        token = (await create_user(conn, f"bench{uuid.uuid4().hex[:6]}", "bench")).token
    # submitting never touches the object store (only reading logs does): an in-memory one will do
    app = create_app(FrontDeps(pool=pool, publisher=Publisher(log, topics),
                               job_data=JobData(InMemoryObjectStore(), "squall-system")))
    bunch = _bunch()
    bodies = [json.dumps({"batch": {"billing_project": "bench", "token": uuid.uuid4().hex, "n_jobs": BUNCH,
                                    "n_job_groups": 0}, "bunch": bunch, "job_groups": []}).encode()
              for _ in range(calls + concurrency)]
    latencies: list[float] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front", timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"}) as client:
        async def call(body: bytes) -> None:
            t = time.perf_counter()
            response = await client.post("/api/v1alpha/batches/create-fast", content=body)
            latencies.append(time.perf_counter() - t)
            if response.status_code != 200:
                raise RuntimeError(f"create-fast failed: {response.status_code} {response.text[:300]}")

        for body in bodies[:concurrency]:  # warm-up: connections, code paths
            await call(body)
        latencies.clear()
        queue = list(bodies[concurrency:])

        async def worker() -> None:
            while queue:
                await call(queue.pop())

        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    await pool.close()
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{label}: {calls} create-fast calls x {BUNCH} jobs, concurrency {concurrency}")
    print(f"  jobs accepted/s:            {calls * BUNCH / elapsed:>10,.0f}   (wall {elapsed:.2f} s, "
          f"this process {cpu:.2f} CPU-s)")
    print(f"  jobs per CPU-second:        {calls * BUNCH / cpu:>10,.0f}   (this process only: what a quiet 1-core "
          "front would reach; PostgreSQL and Kafka run in their own processes)")
    print(f"  create-fast latency p50:    {statistics.median(ms):>10.1f} ms")
    print(f"  create-fast latency p99:    {p99:>10.1f} ms")


async def run(db_url: str, bootstrap: str | None, calls: int, concurrency: int) -> None:
    await asyncio.to_thread(apply_migrations, db_url)
    memory = MemoryEventLog()
    await _measure("memory log", db_url, memory, Topics(prefix=f"b{uuid.uuid4().hex[:8]}."), calls, concurrency)
    await memory.close()
    if bootstrap is not None:
        kafka = await KafkaEventLog.connect(bootstrap, client_id="bench-front")
        try:
            await _measure("real broker (acks=all)", db_url, kafka, Topics(prefix=f"b{uuid.uuid4().hex[:8]}."),
                           calls, concurrency)
        finally:
            await kafka.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--bootstrap", default=os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--database-url", default=os.environ.get("SQUALL_TEST_DATABASE_URL"))
    parser.add_argument("--skip-kafka", action="store_true", help="only the memory log")
    args = parser.parse_args()
    cleanup: list = []
    try:
        server_url = args.database_url
        if server_url is None:
            pg_dir = Path(tempfile.mkdtemp(prefix="squall-bench-pg-"))
            server = EmbeddedPostgres(pg_dir / "data")
            server_url = server.start()
            cleanup += [server.stop, lambda: shutil.rmtree(pg_dir, ignore_errors=True)]
        db_name = f"bench_front_{uuid.uuid4().hex[:8]}"
        db_url = create_database(server_url, db_name)
        cleanup.insert(0, lambda: drop_database(server_url, db_name))
        bootstrap = None if args.skip_kafka else args.bootstrap
        if bootstrap is None and not args.skip_kafka:
            kafka_dir = Path(tempfile.mkdtemp(prefix="squall-bench-kafka-"))
            broker = KafkaBroker(kafka_dir)
            bootstrap = broker.start()
            cleanup += [broker.stop, lambda: shutil.rmtree(kafka_dir, ignore_errors=True)]
        asyncio.run(run(db_url, bootstrap, args.calls, args.concurrency))
    finally:
        for step in cleanup:
            try:
                step()
            except Exception as exc:  # cleanup must not hide the numbers or the real error
                print(f"cleanup: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
