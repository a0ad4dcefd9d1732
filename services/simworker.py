"""Simulated worker instances: they behave like the worker agent on the log, but run nothing.

Each simulated instance announces itself (InstanceActivated), heartbeats, and for every
AttemptAssigned to it appends MJS and, after `job_duration_ms` (0 = at once), MJC Success.
AttemptKillRequested ends a still-running attempt as Cancelled (cause `killed`). Used by the
driver's tests and benchmarks, and by the local provider when no real worker is wanted:

    python -m services.simworker --instance-name w1 --cores 16 --memory-gib 60 --storage-gib 100 \
        --pool standard --region local --bootstrap 127.0.0.1:9092 --topic-prefix squall.

A `SimFleet` runs many instances in one process over one reader of the assignments topic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    Event,
    InstanceActivated,
    InstanceDeactivated,
    InstanceHeartbeat,
    JobAttemptCompleted,
    JobAttemptStarted,
)
from events.codec import Codec
from events.envelope import derived_event_id
from events.failures import KILLED
from events.log import EventLog
from events.publisher import Publisher
from events.running_reports import DEFAULT_INTERVAL_S as DEFAULT_BILLING_INTERVAL_S
from events.running_reports import running_reports

log = logging.getLogger(__name__)
GIB = 1024**3


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SimInstance:
    name: str
    pool: str = "standard"
    cores_mcpu: int = 16_000
    memory_bytes: int = 60 * GIB
    storage_gib: int = 100
    region: str = "local"
    preemptible: bool = True


@dataclass
class _Running:
    attempt: AttemptAssigned
    started_at: int
    timer: asyncio.TimerHandle | None = field(default=None)


class SimFleet:
    """Simulated instances sharing one log connection; see the module doc."""

    def __init__(self, log_: EventLog, publisher: Publisher, *, job_duration_ms: int = 0,
                 heartbeat_interval_s: float = 5.0, billing_interval_s: float = DEFAULT_BILLING_INTERVAL_S,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self._log = log_
        self._publisher = publisher
        self._codec = publisher.codec
        self._clock = clock
        self.job_duration_ms = job_duration_ms
        self.heartbeat_interval_s = heartbeat_interval_s
        self.billing_interval_s = billing_interval_s
        self.instances: dict[str, SimInstance] = {}
        self.running: dict[str, dict[str, _Running]] = {}  # instance -> attempt id -> running
        self._seen_attempts: set[str] = set()  # assignments are re-sent until started: run each once
        self._live_by_job: dict[tuple[int, int], str] = {}  # job -> attempt running on this fleet
        self.double_runs: list[tuple[int, int, str, str]] = []  # (batch, job, attempt, other live attempt)
        self.completed: dict[str, int] = {}  # instance -> attempts completed
        self.max_concurrent_mcpu: dict[str, int] = {}  # instance -> the most cores ever in use
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: list[Event] = []
        self._flush_scheduled = False

    async def add(self, instance: SimInstance) -> None:
        """Announce the instance; from then on its assignments are served."""
        self.instances[instance.name] = instance
        self.running.setdefault(instance.name, {})
        self.completed.setdefault(instance.name, 0)
        await self._publisher.publish([InstanceActivated(
            event_id=f"sim-activate:{instance.name}:{uuid.uuid4().hex[:8]}", occurred_at=self._clock(),
            producer=f"simworker/{instance.name}", instance_name=instance.name, pool=instance.pool,
            cores_mcpu=instance.cores_mcpu, memory_bytes=instance.memory_bytes, storage_gib=instance.storage_gib,
            region=instance.region, preemptible=instance.preemptible, agent_version="sim")])

    async def remove(self, name: str, reason: str = "drained") -> None:
        """Stop serving an instance (as if its agent shut down cleanly)."""
        self.instances.pop(name, None)
        await self._publisher.publish([InstanceDeactivated(
            event_id=derived_event_id("InstanceDeactivated", name, reason), occurred_at=self._clock(),
            producer=f"simworker/{name}", instance_name=name, reason=reason)])

    async def drain(self, name: str, quiet_s: float = 1.0, timeout_s: float = 60.0) -> None:
        """Shut an instance down cleanly: announce it takes no more work, keep serving what is already
        on its way (placements made before the announcement landed) until nothing runs, then stop."""
        await self._publisher.publish([InstanceDeactivated(
            event_id=derived_event_id("InstanceDeactivated", name, "drained"), occurred_at=self._clock(),
            producer=f"simworker/{name}", instance_name=name, reason="drained")])
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < timeout_s:
            if loop.time() - started >= quiet_s and not self.running.get(name):
                break
            await asyncio.sleep(0.1)
        await self._flush()
        self.instances.pop(name, None)

    def kill(self, name: str) -> None:
        """Vanish without a word (a lost VM): no more events from this instance."""
        self.instances.pop(name, None)
        for running in self.running.pop(name, {}).values():
            if running.timer is not None:
                running.timer.cancel()
            a = running.attempt
            if self._live_by_job.get((a.batch_id, a.job_id)) == a.attempt_id:
                del self._live_by_job[(a.batch_id, a.job_id)]

    def running_mcpu_by_user(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for on_instance in self.running.values():
            for r in on_instance.values():
                out[r.attempt.user] = out.get(r.attempt.user, 0) + r.attempt.cores_mcpu
        return out

    async def serve_all(self, group_id: str | None = None) -> None:
        """Serve every instance of this fleet from one reader over all assignment partitions."""
        topic = self._publisher.topics.assignment
        consumer = await self._log.group_consumer(group_id or f"{topic}.simfleet-{uuid.uuid4().hex[:8]}", [topic])
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._billing_reports()))
        try:
            while True:
                for record in await consumer.getmany(timeout_ms=200, max_records=5000):
                    self._handle(self._codec.decode(record.value))
                await self._flush()
        finally:
            await consumer.close()

    async def serve_one(self, name: str, partition: int, offset: int) -> None:
        """Serve one instance by reading only its partition of the assignments topic from `offset`
        (taken before the instance announced itself, so no assignment can slip in between)."""
        topic = self._publisher.topics.assignment
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._billing_reports()))
        while name in self.instances:
            records = await self._log.read(topic, partition, offset, timeout_ms=500)
            for record in records:
                self._handle(self._codec.decode(record.value))
                offset = record.offset + 1
            await self._flush()

    def _handle(self, event: Event) -> None:
        if isinstance(event, AttemptAssigned) and event.instance_name in self.instances:
            self._start(event)
        elif isinstance(event, AttemptKillRequested) and event.instance_name in self.instances:
            running = self.running[event.instance_name].get(event.attempt_id)
            if running is not None:
                self._finish(running, "Cancelled", cause=KILLED)

    def _start(self, a: AttemptAssigned) -> None:
        on_instance = self.running[a.instance_name]
        if a.attempt_id in self._seen_attempts:
            return  # redelivered: an attempt runs once
        self._seen_attempts.add(a.attempt_id)
        now = self._clock()
        running = _Running(a, now)
        on_instance[a.attempt_id] = running
        other = self._live_by_job.setdefault((a.batch_id, a.job_id), a.attempt_id)
        if other != a.attempt_id:  # an invariant tests check: never two live attempts of one job
            self.double_runs.append((a.batch_id, a.job_id, a.attempt_id, other))
        in_use = sum(r.attempt.cores_mcpu for r in on_instance.values())
        self.max_concurrent_mcpu[a.instance_name] = max(self.max_concurrent_mcpu.get(a.instance_name, 0), in_use)
        self._outbox.append(JobAttemptStarted(
            event_id=derived_event_id("JobAttemptStarted", a.batch_id, a.job_id, a.attempt_id), occurred_at=now,
            producer=f"simworker/{a.instance_name}", causation_id=a.event_id, batch_id=a.batch_id, job_id=a.job_id,
            attempt_id=a.attempt_id, instance_name=a.instance_name, started_at=now))
        if self.job_duration_ms <= 0:
            self._finish(running, "Success")
        else:
            loop = asyncio.get_running_loop()
            running.timer = loop.call_later(self.job_duration_ms / 1000, self._finish_later, running)

    def _finish_later(self, running: _Running) -> None:
        self._finish(running, "Success")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._tasks.append(asyncio.create_task(self._flush()))

    def _finish(self, running: _Running, outcome: str, cause: str | None = None) -> None:
        a = running.attempt
        if self.running.get(a.instance_name, {}).pop(a.attempt_id, None) is None:
            return
        if running.timer is not None:
            running.timer.cancel()
        if self._live_by_job.get((a.batch_id, a.job_id)) == a.attempt_id:
            del self._live_by_job[(a.batch_id, a.job_id)]
        self.completed[a.instance_name] = self.completed.get(a.instance_name, 0) + 1
        now = self._clock()
        self._outbox.append(JobAttemptCompleted(
            event_id=derived_event_id("JobAttemptCompleted", a.batch_id, a.job_id, a.attempt_id), occurred_at=now,
            producer=f"simworker/{a.instance_name}", causation_id=a.event_id, batch_id=a.batch_id, job_id=a.job_id,
            attempt_id=a.attempt_id, instance_name=a.instance_name, outcome=outcome,
            exit_code=0 if outcome == "Success" else None, failure_cause=cause, error=None, out_of_memory=False,
            started_at=running.started_at, ended_at=now, steps=(), resource_usage=None))

    async def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outbox:
            batch, self._outbox = self._outbox, []
            await self._publisher.publish(batch)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            now = self._clock()
            await self._publisher.publish([InstanceHeartbeat(
                event_id=f"sim-heartbeat:{name}:{now}", occurred_at=now, producer=f"simworker/{name}",
                instance_name=name, running_attempt_ids=tuple(self.running.get(name, {})))
                for name in list(self.instances)])

    async def _billing_reports(self) -> None:
        """Every billing interval, what each instance runs, as the worker agent reports it; through the
        outbox, so a report never precedes the MJS it follows."""
        while True:
            await asyncio.sleep(self.billing_interval_s)
            now = self._clock()
            for name in list(self.instances):
                started = [r.attempt for r in self.running.get(name, {}).values()]
                self._outbox.extend(running_reports(name, started, now, f"simworker/{name}"))
            await self._flush()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


def _parser() -> argparse.ArgumentParser:
    from events.process.config import add_arguments

    parser = argparse.ArgumentParser(prog="python -m services.simworker", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--instance-name", required=True)
    parser.add_argument("--cores", type=float, required=True, help="cores the instance offers")
    parser.add_argument("--memory-gib", type=float, required=True)
    parser.add_argument("--storage-gib", type=int, required=True)
    parser.add_argument("--pool", default="standard")
    parser.add_argument("--region", default="local")
    parser.add_argument("--preemptible", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--job-duration-ms", type=int, default=0, help="how long each simulated job runs")
    parser.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds between heartbeats")
    parser.add_argument("--billing-interval", type=float, default=DEFAULT_BILLING_INTERVAL_S,
                        help="seconds between reports of the running attempts (they bill them while they run)")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds running attempts get at shutdown")
    return parser


async def _main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from events.kafka_log import KafkaEventLog
    from events.log import partition_for
    from events.process.config import from_args

    config = from_args(args, need_database=False)
    event_log = await KafkaEventLog.connect(config.bootstrap_servers, client_id=f"simworker-{args.instance_name}",
                                            security=config.kafka_security)
    publisher = Publisher(event_log, config.topics, Codec())
    fleet = SimFleet(event_log, publisher, job_duration_ms=args.job_duration_ms,
                     heartbeat_interval_s=args.heartbeat_interval, billing_interval_s=args.billing_interval)
    instance = SimInstance(name=args.instance_name, pool=args.pool, cores_mcpu=int(args.cores * 1000),
                           memory_bytes=int(args.memory_gib * GIB), storage_gib=args.storage_gib, region=args.region,
                           preemptible=args.preemptible)
    n_partitions = await event_log.partitions(config.topics.assignment)
    partition = partition_for(instance.name.encode(), n_partitions)
    start = (await event_log.end_offsets(config.topics.assignment)).get(partition, 0)
    await fleet.add(instance)
    serving = asyncio.create_task(fleet.serve_one(instance.name, partition, start))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        await fleet.drain(instance.name, timeout_s=args.drain_timeout)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    await fleet.close()
    await event_log.close()
    log.info("simulated worker %s (pid %d) stopped", instance.name, os.getpid())


def main() -> None:
    from events.process.run import run_process

    args = _parser().parse_args()
    raise SystemExit(run_process(lambda stop: _main(args, stop), prog="python -m services.simworker"))


if __name__ == "__main__":
    main()
