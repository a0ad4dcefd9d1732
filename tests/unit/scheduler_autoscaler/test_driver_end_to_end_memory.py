"""The scheduler, simulated workers and the lifecycle core together, on the in-memory log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from events.catalog import (
    AttemptAssigned,
    BatchCancelled,
    BatchCancelRequested,
    InstanceDeleted,
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobCompleted,
)
from events.codec import Codec
from events.core.state import CANCELLED, CREATING, SUCCESS
from events.envelope import derived_event_id
from events.publisher import Publisher
from services.scheduler.service import Scheduler
from services.simworker import SimulatedWorker, SimulatedWorkerFleet
from tests.eventually import eventually
from tests.unit.scheduler_autoscaler.driver_support import (
    GIB,
    HeldBootProvider,
    JobDef,
    SimProvider,
    StandinResolver,
    batch_events,
    job_spec,
)


def now_ms() -> int:
    return int(time.time() * 1000)


async def read_all(log, topic):  # type: ignore[no-untyped-def]
    codec = Codec()
    out = []
    for partition, end in (await log.end_offsets(topic)).items():
        offset = 0
        while offset < end:
            records = await log.read(topic, partition, offset, timeout_ms=100)
            out.extend(codec.decode(r.value) for r in records)
            offset = records[-1].offset + 1
    return out


async def test_dag_batch_runs_in_dependency_order(memory_log, topics) -> None:
    publisher = Publisher(memory_log, topics, Codec())
    resolver = StandinResolver(memory_log, publisher)
    resolver.start()
    fleet = SimulatedWorkerFleet(memory_log, publisher)
    await fleet.add(SimulatedWorker(name="w1", cores_mcpu=4000))
    serving = asyncio.create_task(fleet.serve_all())
    ids = itertools.count()
    scheduler = Scheduler(memory_log, publisher, "s1", new_attempt_id=lambda: f"a{next(ids)}")
    running = asyncio.create_task(scheduler.run())
    # a diamond: 1 -> (2, 3) -> 4, plus an independent 5
    jobs = [JobDef(), JobDef(parents=(1,)), JobDef(parents=(1,)), JobDef(parents=(2, 3)), JobDef()]
    try:
        await publisher.publish(batch_events(1, "alice", jobs, now_ms()))
        await eventually(lambda: 1 in resolver.batches and resolver.batches[1].complete, timeout_s=20)
        events = await read_all(memory_log, topics.batch)
        order = [e.job_id for e in events if isinstance(e, JobAttemptScheduled)]
        completed = {e.job_id: e.state for e in events if isinstance(e, JobCompleted)}
        assert completed == dict.fromkeys(range(1, 6), SUCCESS)
        assert sorted(order) == [1, 2, 3, 4, 5]  # one attempt each
        position = {job: i for i, job in enumerate(order)}
        done_at = {e.job_id: i for i, e in enumerate(events) if isinstance(e, JobCompleted)}
        sj_at = {e.job_id: i for i, e in enumerate(events) if isinstance(e, JobAttemptScheduled)}
        for child, parents in ((2, (1,)), (3, (1,)), (4, (2, 3))):
            assert all(done_at[p] < sj_at[child] for p in parents), (child, position)
        assert scheduler.epoch == 1
    finally:
        for task in (running, serving):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await fleet.close()
        await resolver.close()


async def test_a_job_no_instance_can_hold_waits_with_a_reason(memory_log, topics) -> None:
    publisher = Publisher(memory_log, topics, Codec())
    resolver = StandinResolver(memory_log, publisher)
    resolver.start()
    fleet = SimulatedWorkerFleet(memory_log, publisher)
    await fleet.add(SimulatedWorker(name="small", cores_mcpu=2000))
    scheduler = Scheduler(memory_log, publisher, "s1")
    running = asyncio.create_task(scheduler.run())
    try:
        await publisher.publish(batch_events(7, "bob", [JobDef(spec=job_spec(cores_mcpu=2000, memory_bytes=500 * GIB))], now_ms()))
        await eventually(lambda: scheduler.stats.passes > 0 and scheduler.follower is not None
                         and scheduler.follower.state.n_ready() == 1)
        plan = await scheduler.run_pass(scheduler.follower)
        assert plan.assignments == []
        assert [(e.job_id, e.reason.value) for e in plan.explanations] == [(1, "no_capacity")]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await resolver.close()


async def test_a_machine_type_job_runs_on_its_own_instance_which_goes_away_after(memory_log, topics) -> None:
    from events.core.autoscale import PoolConfig
    from services.autoscaler.service import Autoscaler, AutoscalerSettings

    publisher = Publisher(memory_log, topics, Codec())
    resolver = StandinResolver(memory_log, publisher)
    resolver.start()
    fleet = SimulatedWorkerFleet(memory_log, publisher, job_duration_ms=50)
    provider = SimProvider(fleet)
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler = Autoscaler(memory_log, publisher, provider, AutoscalerSettings(pools=(pool,), loop_period_s=0.05,
                                                                                reconcile_interval_s=3600))
    scheduler = Scheduler(memory_log, publisher, "s1")
    tasks = [asyncio.create_task(t) for t in (fleet.serve_all(), autoscaler.run(), scheduler.run())]
    try:
        spec = job_spec(cores_mcpu=8000, machine_type="n1-highmem-8")
        await publisher.publish(batch_events(3, "carol", [JobDef(spec=spec)], now_ms()))
        await eventually(lambda: 3 in resolver.batches and resolver.batches[3].complete, timeout_s=20)
        assert resolver.batches[3].jobs[1].state == SUCCESS
        [name] = provider.created
        assert name.startswith("job-3-1-") and fleet.completed[name] == 1
        await eventually(lambda: name not in fleet.instances, timeout_s=10)  # deleted once its job finished
        events = await read_all(memory_log, topics.batch)
        kinds = [type(e).__name__ for e in events if getattr(e, "job_id", None) == 1]
        assert kinds.index("JobCreating") < kinds.index("JobAttemptScheduled") < kinds.index("JobAttemptCompleted")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await fleet.close()
        await resolver.close()


class PrivateJobStack:
    """Scheduler, autoscaler, simulated workers and the lifecycle core around one job-private job."""

    def __init__(self, memory_log, topics) -> None:  # type: ignore[no-untyped-def]
        from events.core.autoscale import PoolConfig
        from services.autoscaler.service import Autoscaler, AutoscalerSettings

        self.log, self.topics = memory_log, topics
        self.publisher = Publisher(memory_log, topics, Codec())
        self.resolver = StandinResolver(memory_log, self.publisher)
        self.fleet = SimulatedWorkerFleet(memory_log, self.publisher, job_duration_ms=50)
        self.provider = HeldBootProvider(self.fleet)
        pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
        self.autoscaler = Autoscaler(memory_log, self.publisher, self.provider,
                                     AutoscalerSettings(pools=(pool,), loop_period_s=0.05, reconcile_interval_s=3600))
        self.scheduler = Scheduler(memory_log, self.publisher, "s1")
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, batch_id: int) -> str:
        """Submit the job and wait until its private instance is booting; returns the instance name."""
        self.resolver.start()
        self.tasks = [asyncio.create_task(t) for t in (self.fleet.serve_all(), self.autoscaler.run(),
                                                        self.scheduler.run())]
        spec = job_spec(cores_mcpu=8000, machine_type="n1-highmem-8")
        await self.publisher.publish(batch_events(batch_id, "dave", [JobDef(spec=spec)], now_ms()))
        await eventually(lambda: len(self.provider.booting) == 1 and batch_id in self.resolver.batches
                         and self.resolver.batches[batch_id].jobs[1].state == CREATING, timeout_s=20)
        [name] = self.provider.booting
        return name

    def cancel_request(self, batch_id: int) -> BatchCancelRequested:
        return BatchCancelRequested(event_id=f"cancel-{batch_id}", occurred_at=now_ms(), producer="test/front",
                                    batch_id=batch_id, user="dave", reason="requested")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.fleet.close()
        await self.resolver.close()

    async def check_cancelled_without_running(self, batch_id: int, name: str) -> list:  # type: ignore[type-arg]
        """What Hail's canceller leaves: the job Cancelled by an MJC of its Creating attempt, nothing ever
        assigned or run, the instance deleted. Returns the batch log."""
        await eventually(lambda: batch_id in self.resolver.batches and self.resolver.batches[batch_id].complete,
                         timeout_s=20)
        await eventually(lambda: name in self.provider.deleted, timeout_s=20)
        events = await read_all(self.log, self.topics.batch)
        mine = [e for e in events if getattr(e, "batch_id", None) == batch_id and getattr(e, "job_id", None) == 1]
        [ended] = [e for e in mine if isinstance(e, JobAttemptCompleted)]
        assert (ended.instance_name, ended.outcome, ended.failure_cause, ended.started_at) == (
            name, CANCELLED, "cancelled", None)
        [done] = [e for e in mine if isinstance(e, JobCompleted)]
        assert (done.state, done.reason, done.attempt_id) == (CANCELLED, "batch_cancelled", ended.attempt_id)
        assert not any(isinstance(e, JobAttemptStarted) for e in mine)
        assignments = await read_all(self.log, self.topics.assignment)
        assert [e for e in assignments if isinstance(e, AttemptAssigned)] == [], "the job was handed to a worker"
        assert self.fleet.completed.get(name, 0) == 0
        instance = [e for e in await read_all(self.log, self.topics.instance)
                    if getattr(e, "instance_name", None) == name]  # pools' decisions name no instance
        assert [(type(e).__name__, e.reason) for e in instance if isinstance(e, InstanceDeleted)] == [
            (InstanceDeleted.__name__, "job_complete")]
        state = self.scheduler.follower.state if self.scheduler.follower else None
        assert state is not None and state.creating == set() and (batch_id, 1) not in state.jobs
        return events


async def test_a_job_cancelled_while_creating_never_runs_and_its_instance_is_deleted(memory_log, topics) -> None:
    """The batch is cancelled while the job's VM boots: the job ends Cancelled at once (no attempt runs)
    and the VM is deleted before it ever activates."""
    stack = PrivateJobStack(memory_log, topics)
    try:
        name = await stack.start(4)
        await stack.publisher.publish([stack.cancel_request(4)])
        events = await stack.check_cancelled_without_running(4, name)
        assert name not in stack.fleet.instances and name not in stack.provider.booting  # never booted
        assert not any(isinstance(e, JobAttemptScheduled) for e in events)
        assert_read_model_shows_cancelled(events, 4)
    finally:
        await stack.close()


async def test_an_instance_booting_as_its_job_is_cancelled_is_not_used(memory_log, topics) -> None:
    """The VM activates after the cancel took effect but before the canceller's MJC landed: the
    scheduler, which does not follow cancellation, places the Creating attempt there — and the core
    refuses that SJ, so the job still ends Cancelled without running and the VM is deleted."""
    stack = PrivateJobStack(memory_log, topics)
    try:
        name = await stack.start(5)
        await stack.resolver.close()  # hold the canceller back to open the race deterministically
        cancel = stack.cancel_request(5)
        await stack.publisher.publish([cancel, BatchCancelled(
            event_id=derived_event_id("BatchCancelled", 5), occurred_at=cancel.occurred_at, producer="test/resolver",
            causation_id=cancel.event_id, batch_id=5, reason="requested")])
        await stack.provider.boot(name)
        await eventually(lambda: stack.scheduler.stats.placed >= 1, timeout_s=20)  # the SJ the core will refuse
        stack.resolver = StandinResolver(memory_log, stack.publisher)  # rebuilds from the log, then reacts
        stack.resolver.start()
        events = await stack.check_cancelled_without_running(5, name)
        [sj] = [e for e in events if isinstance(e, JobAttemptScheduled)]
        assert sj.instance_name == name and stack.resolver.batches[5].jobs[1].attempt_ids == (sj.attempt_id,)
        await eventually(lambda: name not in stack.fleet.instances, timeout_s=10)
        assert_read_model_shows_cancelled(events, 5)
    finally:
        await stack.close()


def assert_read_model_shows_cancelled(events: list, batch_id: int) -> None:  # type: ignore[type-arg]
    """The API's tables (the read model's pure fold of the same log) and its "why" answer."""
    from events.log import Position
    from projections.readmodel.convert import convert
    from projections.readmodel.fold import ReadModel
    from services.front.why import explain

    model = ReadModel()
    for offset, event in enumerate(e for e in events if getattr(e, "batch_id", None) == batch_id):
        model.apply_all(convert(event, Position("batch", 0, offset)))
    job = model.get("jobs", (batch_id, 1))
    assert job is not None
    attempt = model.get("attempts", (batch_id, 1, job["current_attempt_id"]))
    assert attempt is not None
    batch = model.get("batches", (batch_id,))
    assert batch is not None
    assert (job["state"], job["reason"], job["n_attempts"], job["cost"]) == (CANCELLED, "batch_cancelled", 1, 0)
    assert (attempt["reason"], attempt["outcome"], attempt["start_time"], attempt["cost"]) == (
        "cancelled", CANCELLED, None, 0)
    assert attempt["end_time"] is not None
    assert (batch["state"], batch["n_cancelled"], batch["n_completed"]) == ("complete", 1, 1)
    why = explain(job, None, {}, now_ms())
    assert why["reason_code"] == "complete" and why["message"] == "the job finished as Cancelled: batch_cancelled"
