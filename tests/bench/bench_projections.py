"""Read-model projection numbers against a real Kafka broker and PostgreSQL:

1. live lag: the projector (a subprocess, as in production) while events are appended at a fixed
   rate (default 5,000 events/s): how many events and how many ms it trails the log;
2. replay throughput: rebuilding the read models from offset 0 into a fresh schema, over the live
   part's log plus `--replay-events` more, with the live (transactional) projection ("old") and in
   rebuild mode (projections/readmodel/bulk.py, "new"), in 1 and `--processes` processes, taken in
   turns. Each line gives events/s of wall time, the CPU time per event of the projector processes,
   PostgreSQL and the Kafka broker (when this bench started them), and the machine's load average:
   on a shared 2-core machine the wall figure mostly measures the neighbours, while
   2 cores / (CPU per event) is the rate the same work reaches on 2 idle cores;
3. replay --verify of the live-built tables, in rebuild mode (differences: none expected).

    python tests/bench/bench_projections.py [--rate 5000] [--seconds 20] [--replay-events 200000]
        [--bootstrap H:P] [--database-url URL]

Without --bootstrap / --database-url (or SQUALL_TEST_KAFKA_BOOTSTRAP / SQUALL_TEST_DATABASE_URL)
it starts its own broker and PostgreSQL in a temporary directory and stops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
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


class CpuMeter:
    """CPU seconds used by this process and its children (the projector processes), by the
    PostgreSQL server (postmaster and its children) and by the Kafka broker, when this bench
    started them (an external server's CPU is not visible here)."""

    def __init__(self, server: EmbeddedPostgres | None, broker: KafkaBroker | None) -> None:
        self.pg_dir = str(server.data_dir) if server is not None and server.data_dir is not None else None
        self.broker_pid = broker._read_pid() if broker is not None else None

    def sample(self) -> dict[str, float]:
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = {"projector": me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime}
        if self.pg_dir is not None:
            out["postgres"] = sum(_cpu(pid) for pid in _postgres_pids(self.pg_dir))
        if self.broker_pid is not None:
            out["kafka"] = _cpu(self.broker_pid)
        return out

    def since(self, before: dict[str, float]) -> dict[str, float]:
        return {k: v - before[k] for k, v in self.sample().items()}


def _cpu(pid: int) -> float:
    """utime + stime of a process and of its children it has waited for (seconds)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _postgres_pids(data_dir: str) -> list[int]:
    """The postmaster of `data_dir` and its children (backends, checkpointer, ...)."""
    postmaster = None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "postgres" in cmdline and data_dir in cmdline:
                postmaster = int(entry.name)
                break
    if postmaster is None:
        return []
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster:
                pids.append(int(entry.name))
    return pids


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

        extra = build_stream(StreamShape(n_batches=max(1, args.replay_events // (jobs_per_batch * 6)),
                                         jobs_per_batch=jobs_per_batch, n_instances=16),
                             seed=2, first_batch_id=shape.n_batches + 1).events[:args.replay_events]
        await Publisher(log, topics).publish(extra)
        print(f"replay log: the live part plus {len(extra):,} events = {len(events) + len(extra):,} events")

        tune_gc_for_batches()
        cpu_of = CpuMeter(server, broker)
        for round_ in range(args.rounds):
            for processes in (1, *args.processes):
                for bulk in (False, True):
                    before = cpu_of.sample()
                    result = await rebuild(log, topics, url, "bench_replay", processes=processes, bulk=bulk,
                                           settings=RunnerSettings(max_batch=args.max_batch, workers=args.workers))
                    used = cpu_of.since(before)
                    total = sum(used.values())
                    print(f"replay from offset 0, {'new (rebuild mode)' if result.mode == 'bulk' else 'old (live projection)'}, "
                          f"{processes} process{'es' if processes > 1 else ''}: {result.events:,} events in "
                          f"{result.seconds:.1f} s = {result.events / result.seconds:,.0f} events/s; CPU per event "
                          + ", ".join(f"{k} {v / result.events * 1e6:.1f}" for k, v in used.items())
                          + f" = {total / result.events * 1e6:.1f} us (2 cores / that = "
                          f"{2 * result.events / total:,.0f} events/s); load average {os.getloadavg()[0]:.1f} "
                          f"on {os.cpu_count()} cores (round {round_ + 1})")
        verified = await replay_and_verify(log, topics, url, settings=RunnerSettings(max_batch=args.max_batch))
        print(f"replay --verify ({verified.mode}) of the live-built tables: {len(verified.differences)} differences over "
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
    parser.add_argument("--replay-events", type=int, default=200_000,
                        help="events appended after the live part, for the replay figures only")
    parser.add_argument("--rounds", type=int, default=2, help="replay figures: rounds of old and new in turns")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
