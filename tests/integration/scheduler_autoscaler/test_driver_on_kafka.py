"""The driver on the real broker: DAG order, fair share, no over-commit, failover after SIGKILL, lost instances.

The lifecycle core runs in the real resolver (projections.resolver.service.Resolver) when it is
present, else in `StandinResolver` (the same events.core evolve + react); workers are simulated
(services.simworker) so the tests measure the driver, not podman. Verdicts come from the log
itself, folded with the core after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events.catalog import (
    BatchCancelRequested,
    InstanceDeactivated,
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobCancelled,
    JobCompleted,
    JobCreating,
    SchedulerLeaderElected,
)
from events.codec import Codec
from events.core.autoscale import PoolConfig
from events.core.fairshare import UserDemand, allocate
from events.core.state import SUCCESS
from events.publisher import Publisher
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.health.detector import HealthSettings
from services.scheduler.service import Scheduler, SchedulerSettings
from services.simworker import SimulatedWorker, SimulatedWorkerFleet
from tests.eventually import eventually
from tests.unit.scheduler_autoscaler.driver_support import (
    BatchWatcher,
    HeldBootProvider,
    JobDef,
    ResolverProcess,
    batch_events,
    fold_batches,
    job_spec,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


def now_ms() -> int:
    return int(time.time() * 1000)


async def read_topic(log, topic):  # type: ignore[no-untyped-def]
    codec = Codec()
    out = []
    for partition, end in sorted((await log.end_offsets(topic)).items()):
        offset = 0
        while offset < end:
            records = await log.read(topic, partition, offset, timeout_ms=1000)
            out.extend(codec.decode(r.value) for r in records)
            offset = records[-1].offset + 1
    return out


class Stack:
    """Resolver stand-in + simulated fleet (+ optionally an in-process scheduler) on one log."""

    def __init__(self, log, topics, *, job_duration_ms: int = 0, heartbeat_interval_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        self.log = log
        self.publisher = Publisher(log, topics, Codec())
        self.resolver = ResolverProcess(log, self.publisher)
        self.watcher = BatchWatcher(log, self.publisher)
        self.fleet = SimulatedWorkerFleet(log, self.publisher, job_duration_ms=job_duration_ms,
                              heartbeat_interval_s=heartbeat_interval_s)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, instances: list[SimulatedWorker]) -> None:
        self.resolver.start()
        self.watcher.start()
        for instance in instances:
            await self.fleet.add(instance)
        self.tasks.append(asyncio.create_task(self.fleet.serve_all()))

    def run_scheduler(self, scheduler: Scheduler) -> None:
        self.tasks.append(asyncio.create_task(scheduler.run()))

    def complete(self, *batch_ids: int) -> bool:
        return all(b in self.watcher.complete for b in batch_ids)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.fleet.close()
        await self.watcher.close()
        await self.resolver.close()


async def test_dag_batch_respects_dependencies_and_never_overcommits(kafka_log, topics) -> None:
    stack = Stack(kafka_log, topics, job_duration_ms=20)
    await stack.start([SimulatedWorker(name="w1", cores_mcpu=4000), SimulatedWorker(name="w2", cores_mcpu=2000)])
    stack.run_scheduler(Scheduler(kafka_log, stack.publisher, "s1"))
    # 10 roots, each with 3 children, and one sink depending on every child
    jobs = [JobDef() for _ in range(10)]
    for root in range(1, 11):
        jobs += [JobDef(parents=(root,)) for _ in range(3)]
    jobs.append(JobDef(parents=tuple(range(11, 41))))
    try:
        await stack.publisher.publish(batch_events(1, "alice", jobs, now_ms()))
        await eventually(lambda: stack.complete(1), timeout_s=60)
        events = await read_topic(kafka_log, topics.batch)
        sj_at = {e.job_id: i for i, e in enumerate(events) if isinstance(e, JobAttemptScheduled)}
        done_at = {e.job_id: i for i, e in enumerate(events) if isinstance(e, JobCompleted)}
        states = {e.job_id: e.state for e in events if isinstance(e, JobCompleted)}
        assert states == dict.fromkeys(range(1, 42), SUCCESS)
        for child, job in enumerate(jobs, start=1):
            assert all(done_at[p] < sj_at[child] for p in job.parents), f"job {child} started before a parent ended"
        assert stack.fleet.max_concurrent_mcpu["w1"] <= 4000 and stack.fleet.max_concurrent_mcpu["w2"] <= 2000
        assert stack.fleet.double_runs == []
    finally:
        await stack.close()


async def test_two_users_get_their_water_filling_shares(kafka_log, topics) -> None:
    stack = Stack(kafka_log, topics, job_duration_ms=250)
    await stack.start([SimulatedWorker(name=f"w{i}", cores_mcpu=8000) for i in range(2)])
    scheduler = Scheduler(kafka_log, stack.publisher, "s1")
    stack.run_scheduler(scheduler)
    try:
        # alice fills the cluster first; bob arrives later with as much work
        await stack.publisher.publish(batch_events(1, "alice", [JobDef() for _ in range(400)], now_ms()))
        await eventually(lambda: stack.fleet.running_mcpu_by_user().get("alice", 0) >= 16_000, timeout_s=30)
        await stack.publisher.publish(batch_events(2, "bob", [JobDef() for _ in range(400)], now_ms()))
        await asyncio.sleep(1.0)  # alice's head start drains as her jobs finish
        used = {"alice": 0, "bob": 0}  # core-samples: time-weighted use over a 3 s window
        for _ in range(60):
            usage = stack.fleet.running_mcpu_by_user()
            assert usage.get("alice", 0) + usage.get("bob", 0) <= 16_000
            for user in used:
                used[user] += usage.get(user, 0)
            await asyncio.sleep(0.05)
        assert not stack.complete(1) and not stack.complete(2), "both users must stay backlogged in the window"
        target = allocate({"alice": UserDemand(0, 10**6), "bob": UserDemand(0, 10**6)}, 16_000)
        alice_target = target["alice"] / 16_000
        alice_share = used["alice"] / (used["alice"] + used["bob"])
        assert abs(alice_share - alice_target) <= 0.05, f"alice got {alice_share:.3f}, target {alice_target:.3f}"
        await eventually(lambda: stack.complete(1, 2), timeout_s=60)
        assert max(stack.fleet.max_concurrent_mcpu.values()) <= 8000
        assert stack.fleet.double_runs == []
    finally:
        await stack.close()


def _scheduler_process(kafka_bootstrap: str, prefix: str, name: str, log_dir: Path) -> subprocess.Popen[bytes]:
    out = open(log_dir / f"scheduler-{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "services.scheduler", "--bootstrap", kafka_bootstrap, "--topic-prefix", prefix,
         "--scheduler-id", name, "--home", str(log_dir)],
        stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def test_sigkilled_scheduler_is_replaced_and_every_job_finishes_once(kafka_log, kafka_bootstrap, topics,
                                                                           tmp_path) -> None:
    stack = Stack(kafka_log, topics, job_duration_ms=100)
    await stack.start([SimulatedWorker(name=f"w{i}", cores_mcpu=4000) for i in range(2)])
    first = _scheduler_process(kafka_bootstrap, topics.prefix, "A", tmp_path)
    for _ in range(600):  # A wins the first election before B even starts
        if any(isinstance(e, SchedulerLeaderElected) and e.scheduler_id == "A"
               for e in await read_topic(kafka_log, topics.control)):
            break
        await asyncio.sleep(0.1)
    second = _scheduler_process(kafka_bootstrap, topics.prefix, "B", tmp_path)
    n_jobs = 300
    try:
        await stack.publisher.publish(batch_events(1, "alice", [JobDef() for _ in range(n_jobs)], now_ms()))
        await eventually(lambda: stack.watcher.n_completed.get(1, 0) >= n_jobs // 4, timeout_s=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert not stack.complete(1), "the batch finished before the kill: make it bigger"
        await eventually(lambda: stack.complete(1), timeout_s=90)
        events = await read_topic(kafka_log, topics.batch)
        states = {e.job_id: e.state for e in events if isinstance(e, JobCompleted)}
        assert states == dict.fromkeys(range(1, n_jobs + 1), SUCCESS)
        epochs = {e.scheduler_epoch for e in events if isinstance(e, JobAttemptScheduled)}
        assert epochs == {1, 2}, f"both leaders should have placed jobs, saw epochs {epochs}"
        accepted = fold_batches(events)[1]  # what the core accepted: one attempt per job
        assert all(len(job.attempt_ids) == 1 for job in accepted.jobs.values())
        assert stack.fleet.double_runs == []
        assert max(stack.fleet.max_concurrent_mcpu.values()) <= 4000
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        await stack.close()


async def test_a_silent_instance_is_deactivated_and_its_jobs_retried_elsewhere(kafka_log, topics) -> None:
    stack = Stack(kafka_log, topics, job_duration_ms=3000, heartbeat_interval_s=0.3)
    await stack.start([SimulatedWorker(name="doomed", cores_mcpu=2000)])
    settings = SchedulerSettings(health=HealthSettings(heartbeat_timeout_ms=1500), health_interval_ms=200)
    stack.run_scheduler(Scheduler(kafka_log, stack.publisher, "s1", settings))
    try:
        await stack.publisher.publish(batch_events(1, "alice", [JobDef(), JobDef()], now_ms()))
        await eventually(lambda: len(stack.fleet.running.get("doomed", {})) == 2, timeout_s=30)
        stack.fleet.kill("doomed")
        await stack.fleet.add(SimulatedWorker(name="spare", cores_mcpu=2000))
        await eventually(lambda: stack.complete(1), timeout_s=60)
        events = await read_topic(kafka_log, topics.batch) + await read_topic(kafka_log, topics.instance)
        lost = [e for e in events if isinstance(e, JobAttemptCompleted) and e.failure_cause == "instance_lost"]
        assert sorted(e.job_id for e in lost) == [1, 2] and {e.producer for e in lost} == {"health"}
        assert any(isinstance(e, InstanceDeactivated) and e.instance_name == "doomed"
                   and e.reason == "not_responding" for e in events)
        final = {e.job_id: (e.state, e.n_attempts) for e in events if isinstance(e, JobCompleted)}
        assert final == {1: (SUCCESS, 2), 2: (SUCCESS, 2)}
        assert stack.fleet.completed["spare"] == 2
    finally:
        await stack.close()


async def test_cancelling_a_batch_kills_running_attempts_and_cancels_waiting_jobs(kafka_log, topics) -> None:
    stack = Stack(kafka_log, topics, job_duration_ms=60_000)
    await stack.start([SimulatedWorker(name="w1", cores_mcpu=4000)])
    stack.run_scheduler(Scheduler(kafka_log, stack.publisher, "s1"))
    try:
        await stack.publisher.publish(batch_events(1, "alice", [JobDef() for _ in range(10)], now_ms()))
        await eventually(lambda: len(stack.fleet.running["w1"]) == 4, timeout_s=30)
        await stack.publisher.publish([BatchCancelRequested(event_id="cancel-1", occurred_at=now_ms(),
                                                            producer="test/front", batch_id=1, user="alice",
                                                            reason="cancel")])
        await eventually(lambda: stack.complete(1), timeout_s=30)
        events = await read_topic(kafka_log, topics.batch)
        killed = [e for e in events if isinstance(e, JobAttemptCompleted) and e.outcome == "Cancelled"]
        assert len(killed) == 4 and {e.failure_cause for e in killed} == {"killed"}
        states = [e.state for e in events if isinstance(e, JobCompleted)]
        assert states == ["Cancelled"] * 4  # the running ones; the 6 waiting ones got JobCancelled
        assert sum(isinstance(e, JobCancelled) for e in events) == 6
        assert sum(isinstance(e, JobAttemptScheduled) for e in events) == 4
    finally:
        await stack.close()


async def test_a_job_cancelled_while_creating_never_runs_and_its_vm_is_deleted(kafka_log, topics) -> None:
    """A job-private job whose VM is still booting is cancelled with its batch: the real resolver ends
    its Creating attempt (MJC Cancelled, never started) and the autoscaler deletes the VM before it
    activates; nothing is ever assigned to a worker. A pool job of the same batch is killed as usual."""
    stack = Stack(kafka_log, topics, job_duration_ms=60_000)
    provider = HeldBootProvider(stack.fleet)
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler = Autoscaler(kafka_log, stack.publisher, provider,
                            AutoscalerSettings(pools=(pool,), loop_period_s=0.2, reconcile_interval_s=3600))
    await stack.start([SimulatedWorker(name="w1", cores_mcpu=4000)])
    stack.run_scheduler(Scheduler(kafka_log, stack.publisher, "s1"))
    stack.tasks.append(asyncio.create_task(autoscaler.run()))
    try:
        private = JobDef(spec=job_spec(cores_mcpu=8000, machine_type="n1-highmem-8"))
        await stack.publisher.publish(batch_events(1, "alice", [private, JobDef()], now_ms()))
        def private_vms() -> list[str]:
            return [n for n in provider.booting if n.startswith("job-1-1-")]

        await eventually(lambda: len(private_vms()) == 1 and len(stack.fleet.running["w1"]) == 1, timeout_s=30)
        [name] = private_vms()

        async def creating_in_log() -> bool:
            return any(isinstance(e, JobCreating) for e in await read_topic(kafka_log, topics.batch))

        for _ in range(100):  # the JobCreating is appended with the InstanceRequested, on the other topic
            if await creating_in_log():
                break
            await asyncio.sleep(0.1)
        await stack.publisher.publish([BatchCancelRequested(event_id="cancel-1", occurred_at=now_ms(),
                                                            producer="test/front", batch_id=1, user="alice",
                                                            reason="cancel")])
        await eventually(lambda: stack.complete(1) and name in provider.deleted, timeout_s=30)

        events = await read_topic(kafka_log, topics.batch)
        job1 = [e for e in events if getattr(e, "job_id", None) == 1]
        assert not any(isinstance(e, JobAttemptScheduled | JobAttemptStarted) for e in job1)
        [ended] = [e for e in job1 if isinstance(e, JobAttemptCompleted)]
        assert (ended.instance_name, ended.outcome, ended.failure_cause, ended.started_at) == (
            name, "Cancelled", "cancelled", None)
        done = {e.job_id: (e.state, e.reason) for e in events if isinstance(e, JobCompleted)}
        assert done == {1: ("Cancelled", "batch_cancelled"), 2: ("Cancelled", "killed")}
        assignments = await read_topic(kafka_log, topics.assignment)
        assert [(type(e).__name__, e.job_id) for e in assignments] == [
            ("AttemptAssigned", 2), ("AttemptKillRequested", 2)]
        instance = [e for e in await read_topic(kafka_log, topics.instance) if getattr(e, "instance_name", None) == name]
        assert [type(e).__name__ for e in instance] == [
            "InstanceRequested", "InstanceCreated", "InstanceDeactivated", "InstanceDeleted"]
        assert name not in stack.fleet.instances  # it never booted
        final = fold_batches(events)[1]
        assert final.jobs[1].state == "Cancelled" and final.n_cancelled == 2 and final.complete
    finally:
        await stack.close()
