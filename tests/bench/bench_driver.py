"""Driver throughput and latency through the real broker, with simulated instant workers.

    python tests/bench/bench_driver.py [--bootstrap HOST:PORT] [--jobs 20000] [--rate 200]
        [--security plain|scram|tls] [--idle 30]

Shape of the run (as deployed): the scheduler is its own process (`python -m services.scheduler`);
the lifecycle core runs as `python -m projections.resolver` when that module exists, otherwise as
the in-process stand-in (events.core evolve + react, tests/unit/scheduler_autoscaler/driver_support.py); the
workers are a SimulatedWorkerFleet (MJS + MJC Success as soon as an attempt is assigned).

Prints:
- throughput: N no-op jobs submitted at once (batches of 1,000); jobs scheduled+completed per second
  from the first commit to the last JobCompleted;
- latency: jobs submitted at a steady --rate in batches of 10; submit (commit) → SJ p50/p99, and
  submit → JobCompleted p50/p99, from the events' own timestamps.
- with its own broker: the broker's CPU while everything is connected and idle (--idle seconds),
  and over the load. --security picks the broker: plain (no authentication), scram (secured as
  `squall up` runs it: scheduler and resolver as their roles over SCRAM on loopback), tls (the
  same over SASL_SSL, as workers and --kafka-tls-everywhere connect).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from events.catalog import BatchUpdateCommitted, JobAttemptScheduled, JobCompleted  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.kafka_log import KafkaEventLog  # noqa: E402
from events.kafka_security import KafkaSecurity  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402
from services.simworker import SimulatedWorker, SimulatedWorkerFleet  # noqa: E402
from tests.unit.scheduler_autoscaler.driver_support import JobDef, StandinResolver, batch_events  # noqa: E402


def now_ms() -> int:
    return int(time.time() * 1000)


class CompletionCounter:
    """Counts JobCompleted on the batch topic by fingerprint, without decoding bodies."""

    def __init__(self, log: KafkaEventLog, topics: Topics, codec: Codec) -> None:
        self._log, self._topics, self._codec = log, topics, codec
        self.completed = 0
        self.last_at = 0.0

    async def run(self) -> None:
        consumer = await self._log.group_consumer(f"{self._topics.prefix}bench-{uuid.uuid4().hex[:6]}",
                                                  [self._topics.batch])
        try:
            while True:
                for record in await consumer.getmany(timeout_ms=200, max_records=10_000):
                    if self._codec.event_name_of(record.value) == "JobCompleted":
                        self.completed += 1
                        self.last_at = time.monotonic()
        finally:
            await consumer.close()


async def wait_for(predicate, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark stalled: condition not met in {timeout_s:.0f}s")
        await asyncio.sleep(0.02)


async def job_latencies(log: KafkaEventLog, topics: Topics, batch_ids: set[int]) -> tuple[list[int], list[int]]:
    codec = Codec()
    committed: dict[int, int] = {}
    scheduled: dict[tuple[int, int], int] = {}
    completed: dict[tuple[int, int], int] = {}
    for partition, end in (await log.end_offsets(topics.batch)).items():
        offset = 0
        while offset < end:
            records = await log.read(topics.batch, partition, offset, timeout_ms=1000)
            for r in records:
                name = codec.event_name_of(r.value)
                if name not in ("BatchUpdateCommitted", "JobAttemptScheduled", "JobCompleted"):
                    continue
                e = codec.decode(r.value)
                if e.batch_id not in batch_ids:  # type: ignore[union-attr]
                    continue
                if isinstance(e, BatchUpdateCommitted):
                    committed[e.batch_id] = e.occurred_at
                elif isinstance(e, JobAttemptScheduled):
                    scheduled.setdefault((e.batch_id, e.job_id), e.occurred_at)
                elif isinstance(e, JobCompleted):
                    completed[(e.batch_id, e.job_id)] = e.occurred_at
            offset = records[-1].offset + 1
    to_sj = [t - committed[b] for (b, _), t in scheduled.items()]
    to_done = [t - committed[b] for (b, _), t in completed.items()]
    return to_sj, to_done


def spawn(args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.DEVNULL, stderr=out)


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[int], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else float(values[0])


async def bench(bootstrap: str, n_jobs: int, rate: float, n_latency_jobs: int, n_instances: int,
                broker_pid: int | None = None, idle_s: float = 0.0, auth: Auth | None = None) -> None:
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}.")
    log = await KafkaEventLog.connect(bootstrap, client_id="bench-driver", security=auth.admin if auth else None)
    await log.create_topics(topics.specs())
    if auth is not None:
        from deploy.kafka_acls import apply_acls, stack_acls

        await apply_acls(bootstrap, auth.admin, stack_acls(topics))
    codec = Codec()
    publisher = Publisher(log, topics, codec)
    home = Path(tempfile.mkdtemp(prefix="bench-driver-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    tasks: list[asyncio.Task[None]] = []
    common = ["--bootstrap", bootstrap, "--topic-prefix", topics.prefix, "--home", str(home)]

    def role(name: str) -> list[str]:
        return ["--kafka-credentials", str(auth.files[name])] if auth else []

    resolver: StandinResolver | None = None
    fleet = SimulatedWorkerFleet(log, publisher, heartbeat_interval_s=5.0)
    try:
        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        processes["scheduler"] = spawn([*profile, "-m", "services.scheduler", "--scheduler-id", "bench", *common,
                                        *role("scheduler")], home / "scheduler.log")
        if importlib.util.find_spec("projections.resolver") is not None:
            processes["resolver"] = spawn(["-m", "projections.resolver", *common, *role("resolver")],
                                          home / "resolver.log")
            resolver_kind = "projections.resolver (process)"
        else:
            resolver = StandinResolver(log, publisher)
            resolver.start()
            resolver_kind = "stand-in core (in the bench process)"
        for i in range(n_instances):
            await fleet.add(SimulatedWorker(name=f"sim-{i}", cores_mcpu=16_000))
        tasks.append(asyncio.create_task(fleet.serve_all()))
        counter = CompletionCounter(log, topics, codec)
        tasks.append(asyncio.create_task(counter.run()))
        await asyncio.sleep(8.0)  # the scheduler wins its election and rebuilds
        if broker_pid is not None and idle_s > 0:  # everything connected, nothing to do
            before, t0 = cpu_seconds(broker_pid), time.monotonic()
            await asyncio.sleep(idle_s)
            idle = (cpu_seconds(broker_pid) - before) / (time.monotonic() - t0)
            print(f"  broker idle ({auth.mode if auth else 'plain'}): {idle * 100:.1f}% of a core "
                  f"over {idle_s:.0f} s (scheduler, resolver, {n_instances} heartbeating instances connected)")
        broker_before = cpu_seconds(broker_pid) if broker_pid is not None else 0.0

        # --- throughput: everything at once --------------------------------------------------
        per_batch = 1000
        batches = [batch_events(b, f"user{b % 4}", [JobDef()] * min(per_batch, n_jobs - (b - 1) * per_batch),
                                now_ms()) for b in range(1, -(-n_jobs // per_batch) + 1)]
        started = time.monotonic()
        for events in batches:
            await publisher.publish(events)
        submitted = time.monotonic()
        await wait_for(lambda: counter.completed >= n_jobs, timeout_s=max(120.0, n_jobs / 50))
        elapsed = counter.last_at - started
        sj, done = await job_latencies(log, topics, set(range(1, len(batches) + 1)))
        print(f"driver bench: {n_jobs} no-op jobs, {n_instances} simulated 16-core instances, resolver: "
              f"{resolver_kind}")
        print(f"  submit {n_jobs} jobs: {submitted - started:.2f} s ({n_jobs / (submitted - started):,.0f} jobs/s)")
        print(f"  scheduled+completed: {elapsed:.2f} s -> {n_jobs / elapsed:,.0f} jobs/s end to end")
        print(f"  under that load: commit->SJ p50 {pct(sj, 50):.0f} ms p99 {pct(sj, 99):.0f} ms; "
              f"commit->JobCompleted p50 {pct(done, 50):.0f} ms p99 {pct(done, 99):.0f} ms")

        # --- latency: a steady trickle -------------------------------------------------------
        first = len(batches) + 1
        n_batches = max(1, n_latency_jobs // 10)
        base = counter.completed
        for i in range(n_batches):
            await publisher.publish(batch_events(first + i, f"user{i % 4}", [JobDef()] * 10, now_ms()))
            await asyncio.sleep(10 / rate)
        await wait_for(lambda: counter.completed >= base + n_batches * 10, timeout_s=120)
        sj, done = await job_latencies(log, topics, set(range(first, first + n_batches)))
        print(f"  steady {rate:.0f} jobs/s (batches of 10): commit->SJ p50 {pct(sj, 50):.0f} ms "
              f"p99 {pct(sj, 99):.0f} ms; commit->JobCompleted p50 {pct(done, 50):.0f} ms p99 {pct(done, 99):.0f} ms")
        cpu = {name: cpu_seconds(p.pid) for name, p in processes.items()}
        own = resource.getrusage(resource.RUSAGE_SELF)
        cpu["bench process (submit, fleet, counter" + (", resolver" if resolver else "") + ")"] = \
            own.ru_utime + own.ru_stime
        n_total = n_jobs + n_batches * 10
        if broker_pid is not None:
            used = cpu_seconds(broker_pid) - broker_before
            print(f"  broker under load ({auth.mode if auth else 'plain'}): {used:.1f} s CPU for {n_total} jobs "
                  f"({used / n_total * 1000:.2f} ms per job)")
        print("  cpu per job (incl. start-up): " + "; ".join(f"{k} {v / n_total * 1000:.2f} ms ({v:.1f} s)"
                                                           for k, v in cpu.items()))
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await fleet.close()
        if resolver is not None:
            await resolver.close()
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        await log.close()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP"),
                        help="an existing broker; default: start one for the run")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="jobs/s of the latency phase")
    parser.add_argument("--latency-jobs", type=int, default=2_000)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--security", choices=("plain", "scram", "tls"), default="plain",
                        help="with its own broker: unauthenticated, SCRAM on loopback, or SCRAM over TLS")
    parser.add_argument("--idle", type=float, default=0.0, help="seconds of idle broker CPU to measure first")
    args = parser.parse_args()
    if args.bootstrap:
        asyncio.run(bench(args.bootstrap, args.jobs, args.rate, args.latency_jobs, args.instances))
        return
    from deploy.kafka import KafkaBroker
    from deploy.kafka_auth import KafkaAuth

    data_dir = Path(tempfile.mkdtemp(prefix="bench-driver-kafka-"))
    auth = None
    if args.security != "plain":
        secrets = KafkaAuth.load_or_create(data_dir / "auth")
        tls = args.security == "tls"
        files = secrets.write_credentials(data_dir / "credentials", tls_roles=("admin", "scheduler", "resolver")
                                          if tls else ())
        auth = Auth(args.security, secrets.client("admin", tls=tls), files)
        broker = KafkaBroker(data_dir / "kafka", security=secrets.broker_security())
    else:
        broker = KafkaBroker(data_dir / "kafka")
    try:
        broker.start()
        bootstrap = broker.external_bootstrap if args.security == "tls" else broker.bootstrap
        asyncio.run(bench(bootstrap, args.jobs, args.rate, args.latency_jobs, args.instances,
                          broker_pid=broker._read_pid(), idle_s=args.idle, auth=auth))
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass(frozen=True)
class Auth:
    mode: str
    admin: KafkaSecurity
    files: dict[str, Path]


if __name__ == "__main__":
    main()
