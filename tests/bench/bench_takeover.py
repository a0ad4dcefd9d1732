"""Take-over time: a resolver and a scheduler process, from their start to their first decision, over a
log of --events events, without a snapshot (a refold from offset 0, what every start did before) and with one.

    python tests/bench/bench_takeover.py [--events 200000] [--tail-events 20000]
        [--bootstrap H:P --database-url URL [--topic-prefix P --reuse]]

1. builds the log through the producer in bulk: completed batches of --jobs-per-batch jobs, each with
   the events the front end, scheduler, resolver and a worker append (ids derived as the resolver
   derives them, so the folds see a real history), then --active-batches batches whose jobs are all
   ready, on --instances active instances;
2. resolver: starts `python -m projections.resolver` with no snapshot stored; the log ends with a
   scheduling decision awaiting its verdict, and the time from process start to that verdict in the
   log is the first decision (it stores its snapshot when done); stopped, then --tail-events more
   events and a new decision are appended (the tail a real restart refolds), and it is started again;
3. scheduler: the same with `python -m services.scheduler`: its first decision is its first
   JobAttemptScheduled; the second start's trigger is a newly activated instance.
Each start prints the process's own account (records folded, snapshot used) from its log.

Without --bootstrap / --database-url it starts its own broker and PostgreSQL in a temporary
directory (or SQUALL_TEST_KAFKA_BOOTSTRAP / SQUALL_TEST_DATABASE_URL) and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from events import catalog as ev  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.core.evolve import PARENTS_COMPLETE  # noqa: E402
from events.core.lifecycle import evolve, react  # noqa: E402
from events.envelope import derived_event_id  # noqa: E402
from events.kafka_log import KafkaEventLog  # noqa: E402
from events.log import Message  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402
from projections.db import READMODEL_MIGRATIONS, migrate  # noqa: E402

P = "bench/takeover"
SPEC = ev.JobSpec(process_type="docker", image="ubuntu:24.04", command=("bash", "-c", "echo hello"), env=(),
                  input_files=(), output_files=(), always_copy_output=False, network="public",
                  resources=ev.Resources(cores_mcpu=1000, memory_bytes=3_750 * 1024**2, storage_gib=0,
                                         preemptible=True, worker_type="standard"))
INSTANCE_CORES = 16_000


def now_ms() -> int:
    return int(time.time() * 1000)


# --- the log --------------------------------------------------------------------------------------

def batch_head(b: int, n_jobs: int, t: int) -> list[ev.Event]:
    user = f"user{b % 5}"
    out: list[ev.Event] = [
        ev.BatchCreated(event_id=f"bc-{b}", occurred_at=t, producer=P, batch_id=b, user=user, billing_project="bp",
                        token=f"tok-{b}", attributes={}),
        ev.BatchUpdateCreated(event_id=f"uc-{b}", occurred_at=t, producer=P, batch_id=b, update_id=1,
                              token=f"ut-{b}", n_jobs=n_jobs, n_job_groups=0, start_job_id=1, start_job_group_id=1)]
    out += [ev.JobCreated(event_id=f"jc-{b}-{j}", occurred_at=t, producer=P, batch_id=b, job_id=j, update_id=1,
                          job_group_id=0, parent_ids=(), always_run=False, n_max_attempts=3, user=user,
                          billing_project="bp", attributes={}, spec=SPEC, spec_json="{}")
            for j in range(1, n_jobs + 1)]
    out.append(ev.BatchUpdateCommitted(event_id=f"cm-{b}", occurred_at=t, producer=P, batch_id=b, update_id=1,
                                       n_jobs=n_jobs, n_job_groups=0, start_job_id=1, start_job_group_id=1))
    return out


def ready(b: int, j: int, t: int) -> ev.JobBecameReady:
    return ev.JobBecameReady(event_id=derived_event_id("JobBecameReady", b, j, PARENTS_COMPLETE), occurred_at=t,
                             producer=P, batch_id=b, job_id=j, reason=PARENTS_COMPLETE)


def scheduled(b: int, j: int, attempt: str, instance: str, t: int, epoch: int = 1) -> ev.JobAttemptScheduled:
    return ev.JobAttemptScheduled(
        event_id=derived_event_id("JobAttemptScheduled", b, j, attempt), occurred_at=t, producer=P, batch_id=b,
        job_id=j, attempt_id=attempt, instance_name=instance, scheduler_epoch=epoch, user=f"user{b % 5}",
        cores_mcpu=1000, memory_bytes=SPEC.resources.memory_bytes, storage_gib=0, awaits_verdict=True)


def job_life(b: int, j: int, instance: str, t: int) -> list[ev.Event]:
    """A job's life after its commit, as the resolver, scheduler and a worker append it."""
    attempt = f"a{b}.{j}"  # attempt ids are unique across the log (the scheduling view keys them alone)
    return [
        ready(b, j, t),
        scheduled(b, j, attempt, instance, t),
        ev.JobAttemptAccepted(event_id=derived_event_id("JobAttemptAccepted", b, j, attempt, "Running"),
                              occurred_at=t, producer=P, batch_id=b, job_id=j, attempt_id=attempt,
                              instance_name=instance, state="Running", scheduler_epoch=1, cores_mcpu=1000,
                              memory_bytes=SPEC.resources.memory_bytes, storage_gib=0),
        ev.JobAttemptStarted(event_id=f"mjs-{b}-{j}", occurred_at=t, producer=P, batch_id=b, job_id=j,
                             attempt_id=attempt, instance_name=instance, started_at=t),
        ev.JobAttemptCompleted(event_id=f"mjc-{b}-{j}", occurred_at=t + 1, producer=P, batch_id=b, job_id=j,
                               attempt_id=attempt, instance_name=instance, outcome="Success", exit_code=0,
                               failure_cause=None, out_of_memory=False, started_at=t, ended_at=t + 1, steps=()),
        ev.JobCompleted(event_id=derived_event_id("JobCompleted", b, j, attempt), occurred_at=t + 1, producer=P,
                        batch_id=b, job_id=j, state="Success", attempt_id=attempt, exit_code=0, reason=None,
                        n_attempts=1),
    ]


def completed_batch(b: int, n_jobs: int, instances: list[str], t: int) -> list[ev.Event]:
    out = batch_head(b, n_jobs, t)
    for j in range(1, n_jobs + 1):
        out += job_life(b, j, instances[(b + j) % len(instances)], t)
    out.append(ev.BatchCompleted(event_id=derived_event_id("BatchCompleted", b, n_jobs), occurred_at=t + 1,
                                 producer=P, batch_id=b, n_jobs=n_jobs, n_succeeded=n_jobs, n_failed=0,
                                 n_cancelled=0))
    return out


def active_batch(b: int, n_jobs: int, t: int) -> list[ev.Event]:
    return batch_head(b, n_jobs, t) + [ready(b, j, t) for j in range(1, n_jobs + 1)]


def instance_up(name: str, t: int) -> list[ev.Event]:
    return [ev.InstanceRequested(event_id=f"ir-{name}", occurred_at=t, producer=P, instance_name=name, pool="standard",
                                 provider="local", machine_type="n1-standard-16", cores_mcpu=INSTANCE_CORES,
                                 memory_bytes=60 * 1024**3, storage_gib=375, preemptible=True, region="local"),
            ev.InstanceCreated(event_id=f"ic-{name}", occurred_at=t, producer=P, instance_name=name, provider="local",
                               provider_id=name),
            ev.InstanceActivated(event_id=f"ia-{name}", occurred_at=t, producer=P, instance_name=name, pool="standard",
                                 cores_mcpu=INSTANCE_CORES, memory_bytes=60 * 1024**3, storage_gib=375, region="local",
                                 preemptible=True)]


def heartbeat(name: str) -> ev.InstanceHeartbeat:
    t = now_ms()
    return ev.InstanceHeartbeat(event_id=f"ih-{name}-{t}", occurred_at=t, producer=P, instance_name=name,
                                running_attempt_ids=())


def check_history_is_real() -> None:
    """The generated lives fold as the resolver folds them: a completed batch derives nothing more and
    is quiescent, an active batch's jobs are all ready and wait for nothing; and as the scheduling view
    folds them: completed batches leave no attempt holding an instance."""
    from projections.resolver.core import ResolverCore

    state = None
    for e in completed_batch(1, 5, ["i"], 0):
        state = evolve(state, e)
    assert state is not None and state.complete and not react(state, P, everything=True)
    assert ResolverCore(P).is_quiescent(state)
    active = None
    for e in active_batch(2, 5, 0):
        active = evolve(active, e)
    assert active is not None and {j.state for j in active.jobs.values()} == {"Ready"}
    assert not react(active, P, everything=True)
    from projections.scheduling.state import SchedulingState

    view = SchedulingState()
    for e in [*instance_up("i", 0), *history(2 * (4 + 7 * 5), 5, ["i"], 1)]:
        view.apply(e)
    instance = view.instances["i"]
    assert not view.attempts and not instance.attempts and instance.free_cores_mcpu == INSTANCE_CORES, \
        "the scheduling view must see every generated attempt end"


class LogBuilder:
    def __init__(self, log: KafkaEventLog, topics: Topics, codec: Codec) -> None:
        self.log, self.publisher = log, Publisher(log, topics, codec)
        self.appended = 0

    async def append(self, events: Iterator[ev.Event], chunk: int = 20_000) -> None:
        pending: list[Message] = []
        for e in events:
            pending.append(self.publisher.to_message(e))
            if len(pending) >= chunk:
                await self.log.append(pending)
                self.appended += len(pending)
                pending = []
        if pending:
            await self.log.append(pending)
            self.appended += len(pending)


def history(n_events: int, jobs_per_batch: int, instances: list[str], first_batch: int) -> Iterator[ev.Event]:
    """Completed batches until about n_events (interleaved two at a time, as concurrent batches are)."""
    per_batch = 4 + 7 * jobs_per_batch
    n_batches = max(1, n_events // per_batch)
    t = now_ms() - 3_600_000
    for b in range(first_batch, first_batch + n_batches, 2):
        one = completed_batch(b, jobs_per_batch, instances, t)
        two = completed_batch(b + 1, jobs_per_batch, instances, t) if b + 1 < first_batch + n_batches else []
        for i in range(max(len(one), len(two))):
            if i < len(one):
                yield one[i]
            if i < len(two):
                yield two[i]


# --- the processes ----------------------------------------------------------------------------------

class Watch:
    """Follows the batch topic from its end now, for the first event a predicate accepts."""

    def __init__(self, log: KafkaEventLog, topics: Topics, codec: Codec) -> None:
        self.log, self.topics, self.codec = log, topics, codec

    async def start(self) -> None:
        ends = await self.log.end_offsets(self.topics.batch)
        self.consumer = await self.log.assigned_consumer({(self.topics.batch, p): o for p, o in ends.items()})

    async def first(self, wanted: Callable[[ev.Event], bool], names: set[str], timeout_s: float,
                    process: subprocess.Popen[bytes]) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in await self.consumer.getmany(timeout_ms=50, max_records=10_000):
                if self.codec.event_name_of(record.value) in names and wanted(self.codec.decode(record.value)):
                    return time.monotonic()
            if process.poll() is not None:
                raise RuntimeError(f"the process ended with {process.returncode} before its first decision")
        raise TimeoutError(f"no decision within {timeout_s:.0f}s")

    async def close(self) -> None:
        await self.consumer.close()


SPAWNED: list[subprocess.Popen[bytes]] = []  # stopped at exit, whatever path the bench took


def spawn(module: str, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    SPAWNED.append(process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def timed_start(module: str, args: list[str], log_path: Path, watch: Watch, wanted: Callable[[ev.Event], bool],
                      names: set[str], timeout_s: float, why: Callable[[], list[str]] | None = None,
                      ) -> tuple[float, subprocess.Popen[bytes]]:
    await watch.start()
    started = time.monotonic()
    process = spawn(module, args, log_path)
    try:
        seen = await watch.first(wanted, names, timeout_s, process)
    except BaseException:
        stop(process)
        print(f"{module} did not decide; the end of its log:", *log_tail(log_path), sep="\n    ", file=sys.stderr)
        if why is not None:
            print("why jobs wait:", *why(), sep="\n    ", file=sys.stderr)
        raise
    finally:
        await watch.close()
    return seen - started, process


def wait_for_sql(url: str, query: str, params: tuple[object, ...], ok: Callable[[object], bool],
                 timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with psycopg.connect(url) as conn:
            row = conn.execute(query, params).fetchone()
        if row is not None and ok(row[0]):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"the snapshot was not stored within {timeout_s:.0f}s")


def log_tail(log_path: Path, n: int = 30) -> list[str]:
    return log_path.read_text(errors="replace").splitlines()[-n:] if log_path.exists() else []


def rebuilds(log_path: Path, source: str) -> str:
    """The resolver's own account of its partitions' rebuilds in this start, summed."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    found = [re.search(r"rebuilt \S+ from (.*?) and (\d+) records in ([\d.]+)s", line) for line in lines]
    mine = [m for m in found if m is not None and m.group(1).startswith(source)]
    return (f"{len(mine)} partitions rebuilt from {source}: {sum(int(m.group(2)) for m in mine):,} records refolded, "
            f"{sum(float(m.group(3)) for m in mine):.2f} s in all")


def account(log_path: Path, patterns: list[str]) -> list[str]:
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return [line.split(": ", 1)[-1] for line in lines if any(re.search(p, line) for p in patterns)]


# --- the bench -------------------------------------------------------------------------------------

async def bench(args: argparse.Namespace, bootstrap: str, url: str, workdir: Path) -> None:
    codec = Codec()
    topics = Topics(prefix=args.topic_prefix or f"bench{uuid.uuid4().hex[:8]}.")
    log = await KafkaEventLog.connect(bootstrap, client_id="bench-takeover", linger_ms=20)
    await log.create_topics(topics.specs())
    migrate(url, [READMODEL_MIGRATIONS])
    builder = LogBuilder(log, topics, codec)
    common = ["--bootstrap", bootstrap, "--topic-prefix", topics.prefix, "--database-url", url,
              "--snapshot-interval", "1"]  # stored soon after the first decision, not 30 s later
    instances = [f"bench-i{i}" for i in range(args.instances)]
    check_history_is_real()

    in_log = sum((await log.end_offsets(topics.batch)).values())
    first_batch = 1_000_000  # active batches below it: the oldest, so they are scheduled first
    if args.reuse and in_log >= args.events:
        print(f"log: reusing {in_log:,} batch events under {topics.prefix}")
    else:
        if in_log:
            raise SystemExit(f"topics {topics.prefix}* hold {in_log:,} events already; use --reuse or a new prefix")
        started = time.monotonic()
        t = now_ms() - 7_200_000
        await builder.append(e for name in instances for e in instance_up(name, t))
        await builder.append(e for b in range(1, args.active_batches + 1)
                             for e in active_batch(b, args.jobs_per_batch, t))
        await builder.append(history(args.events - builder.appended, args.jobs_per_batch, instances, first_batch))
        took = time.monotonic() - started
        print(f"log: {builder.appended:,} events built in {took:.0f} s ({builder.appended / took:,.0f} events/s, "
              f"encode + append through the producer, acks=all)")
    ends = await log.end_offsets(topics.batch)
    total = sum(ends.values())
    print(f"log: {total:,} batch-topic events over {len(ends)} partitions; {args.active_batches} active batches "
          f"with {args.active_batches * args.jobs_per_batch:,} ready jobs; {len(instances)} instances")

    def verdict_of(attempt: str) -> Callable[[ev.Event], bool]:
        return lambda e: isinstance(e, ev.JobAttemptAccepted | ev.JobAttemptRefused) and e.attempt_id == attempt

    # --- resolver ---
    results: dict[str, dict[str, float]] = {"resolver": {}, "scheduler": {}}
    resolver_log = workdir / "resolver.log"
    await builder.append(iter([scheduled(1, 1, "first", instances[0], now_ms(), epoch=1)]))
    took, process = await timed_start("projections.resolver", common, resolver_log, Watch(log, topics, codec),
                                      verdict_of("first"), {"JobAttemptAccepted", "JobAttemptRefused"},
                                      args.timeout)
    results["resolver"]["without"] = took
    print(f"resolver, no snapshot: first decision {took:.2f} s after process start")
    print(f"    {rebuilds(resolver_log, 'offset 0')}")
    stored = wait_for_sql(url, "SELECT count(*) FROM snapshot_partitions WHERE topic = %s", (topics.batch,),
                          lambda n: n == len(ends), args.timeout)
    stop(process)
    with psycopg.connect(url) as conn:
        rows, size = conn.execute("SELECT count(*), coalesce(sum(length(state)), 0) FROM snapshot_batches "
                                  "WHERE topic = %s", (topics.batch,)).fetchone()
    print(f"    its snapshot: {rows:,} batch rows, {size / 1e6:.1f} MB, stored {stored:.1f} s after the first decision "
          "(and again at its clean stop)")

    await builder.append(history(args.tail_events, args.jobs_per_batch, instances, first_batch + 100_000))
    await builder.append(iter([scheduled(1, 2, "second", instances[0], now_ms(), epoch=1)]))
    took, process = await timed_start("projections.resolver", common, resolver_log, Watch(log, topics, codec),
                                      verdict_of("second"), {"JobAttemptAccepted", "JobAttemptRefused"},
                                      args.timeout)
    results["resolver"]["with"] = took
    print(f"resolver, snapshot + a tail of {args.tail_events:,} events: first decision {took:.2f} s after process start")
    print(f"    {rebuilds(resolver_log, 'a snapshot')}")
    stop(process)

    # --- scheduler ---
    scheduler_log = workdir / "scheduler.log"
    sched_args = [*common, "--heartbeat-timeout", "36000", "--activation-timeout", "36000"]
    await builder.append(iter([heartbeat(name) for name in instances]))

    def placed(e: ev.Event) -> bool:
        return isinstance(e, ev.JobAttemptScheduled) and e.producer.startswith("scheduler/")

    def why() -> list[str]:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT reason_code, message, count(*) FROM scheduling_explanations "
                                "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5").fetchall()
        return [f"{n} jobs: {code}: {message}" for code, message, n in rows]

    took, process = await timed_start("services.scheduler", [*sched_args, "--scheduler-id", "bench-1"], scheduler_log,
                                      Watch(log, topics, codec), placed, {"JobAttemptScheduled"}, args.timeout, why)
    results["scheduler"]["without"] = took
    print(f"scheduler, no snapshot: first decision {took:.2f} s after process start")
    for line in account(scheduler_log, [r"rebuilt its view"])[:2]:
        print(f"    {line}")
    view = f"{topics.prefix}scheduling"
    end_now = sum((await log.end_offsets(topics.batch)).values())
    stored = wait_for_sql(url, "SELECT positions FROM snapshot_views WHERE name = %s", (view,),
                          lambda positions: sum(o for t, _, o in positions if t == topics.batch) >= end_now,
                          args.timeout)
    stop(process)
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT length(state) FROM snapshot_views WHERE name = %s", (view,)).fetchone()[0]
    print(f"    its snapshot: {size / 1e6:.2f} MB, covering the log {stored:.1f} s after the first decision")

    await builder.append(history(args.tail_events, args.jobs_per_batch, instances, first_batch + 200_000))
    fresh = "bench-fresh"
    await builder.append(iter([*instance_up(fresh, now_ms()), heartbeat(fresh), *[heartbeat(n) for n in instances]]))
    took, process = await timed_start("services.scheduler", [*sched_args, "--scheduler-id", "bench-2"], scheduler_log,
                                      Watch(log, topics, codec), placed, {"JobAttemptScheduled"}, args.timeout)
    results["scheduler"]["with"] = took
    print(f"scheduler, snapshot + a tail of {args.tail_events:,} events: first decision {took:.2f} s after process "
          "start")
    for line in account(scheduler_log, [r"starts from a snapshot", r"rebuilt its view"])[-2:]:
        print(f"    {line}")
    stop(process)
    await log.close()

    print()
    print(f"first decision after process start (a new Python process: imports, Kafka and PostgreSQL connections "
          f"included), {total:,} events in the log, goal <= 2 s:")
    for who, r in results.items():
        print(f"  {who:<9}  without a snapshot {r['without']:7.2f} s   with one {r['with']:5.2f} s")
    print(f"  load average {os.getloadavg()[0]:.1f} (2 cores shared)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="batch-topic events in the log")
    parser.add_argument("--tail-events", type=int, default=20_000, help="events appended after each snapshot")
    parser.add_argument("--jobs-per-batch", type=int, default=1_000)
    parser.add_argument("--active-batches", type=int, default=4, help="batches whose jobs are all ready")
    parser.add_argument("--instances", type=int, default=50, help="active instances (16 cores each)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any one start may take")
    parser.add_argument("--bootstrap", default=os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--database-url", default=os.environ.get("SQUALL_TEST_DATABASE_URL"))
    parser.add_argument("--topic-prefix", default=None, help="with --reuse: the topics of an earlier run")
    parser.add_argument("--reuse", action="store_true", help="use the log already under --topic-prefix")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, on_terminate)
    with contextlib.ExitStack() as cleanup:  # every step runs, even when one before it fails
        workdir = Path(tempfile.mkdtemp(prefix="squall-bench-takeover-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        bootstrap, url = args.bootstrap, args.database_url
        if not bootstrap:
            from deploy.kafka import KafkaBroker

            broker = KafkaBroker(workdir / "kafka")
            cleanup.callback(broker.stop)
            bootstrap = broker.start()
            broker.stop_when_gone(os.getpid(), remove_data=True)
        if not url:
            from deploy.postgres import EmbeddedPostgres, create_database

            server = EmbeddedPostgres(workdir / "pg")
            cleanup.callback(server.stop)
            url = create_database(server.start(), "bench")
        cleanup.callback(stop_spawned)
        asyncio.run(bench(args, bootstrap, url, workdir))


def on_terminate(*_: object) -> None:
    """A killed bench still stops what it started (once: a second signal does not cut that short)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def stop_spawned() -> None:
    for process in SPAWNED:
        if process.poll() is None:
            stop(process)

if __name__ == "__main__":
    main()
