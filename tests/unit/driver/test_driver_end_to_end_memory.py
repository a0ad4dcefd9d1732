"""The scheduler, simulated workers and the lifecycle core together, on the in-memory log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from events.catalog import JobAttemptScheduled, JobCompleted
from events.codec import Codec
from events.core.state import SUCCESS
from events.publisher import Publisher
from services.scheduler.service import Scheduler
from services.simworker import SimFleet, SimInstance
from tests.unit.driver.driver_support import GIB, JobDef, StandinResolver, batch_events, job_spec, wait_until


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
    fleet = SimFleet(memory_log, publisher)
    await fleet.add(SimInstance(name="w1", cores_mcpu=4000))
    serving = asyncio.create_task(fleet.serve_all())
    ids = itertools.count()
    scheduler = Scheduler(memory_log, publisher, "s1", new_attempt_id=lambda: f"a{next(ids)}")
    running = asyncio.create_task(scheduler.run())
    # a diamond: 1 -> (2, 3) -> 4, plus an independent 5
    jobs = [JobDef(), JobDef(parents=(1,)), JobDef(parents=(1,)), JobDef(parents=(2, 3)), JobDef()]
    try:
        await publisher.publish(batch_events(1, "alice", jobs, now_ms()))
        await wait_until(lambda: 1 in resolver.batches and resolver.batches[1].complete, timeout_s=20)
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
    fleet = SimFleet(memory_log, publisher)
    await fleet.add(SimInstance(name="small", cores_mcpu=2000))
    scheduler = Scheduler(memory_log, publisher, "s1")
    running = asyncio.create_task(scheduler.run())
    try:
        await publisher.publish(batch_events(7, "bob", [JobDef(spec=job_spec(cores_mcpu=2000, memory_bytes=500 * GIB))], now_ms()))
        await wait_until(lambda: scheduler.stats.passes > 0 and scheduler.follower is not None
                         and scheduler.follower.state.n_ready() == 1)
        plan = await scheduler.run_pass(scheduler.follower)
        assert plan.assignments == []
        assert [(e.job_id, e.reason.value) for e in plan.explanations] == [(1, "no_capacity")]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await resolver.close()


class SimProvider:
    """An InstanceProvider whose instances are simulated workers that boot at once."""

    name = "sim"

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet
        self.created: list[str] = []

    async def create(self, spec):  # type: ignore[no-untyped-def]
        from services.providers.base import ProviderInstance

        self.created.append(spec.name)
        await self.fleet.add(SimInstance(name=spec.name, pool=spec.pool, cores_mcpu=spec.cores_mcpu,
                                         memory_bytes=spec.memory_bytes, storage_gib=spec.storage_gib))
        return ProviderInstance(spec.name, spec.name, "running")

    async def delete(self, name, provider_id=None):  # type: ignore[no-untyped-def]
        if name in self.fleet.instances:
            await self.fleet.drain(name, quiet_s=0)

    async def list(self):  # type: ignore[no-untyped-def]
        return []

    async def close(self) -> None:
        pass


async def test_a_machine_type_job_runs_on_its_own_instance_which_goes_away_after(memory_log, topics) -> None:
    from events.core.autoscale import PoolConfig
    from services.autoscaler.service import Autoscaler, AutoscalerSettings

    publisher = Publisher(memory_log, topics, Codec())
    resolver = StandinResolver(memory_log, publisher)
    resolver.start()
    fleet = SimFleet(memory_log, publisher, job_duration_ms=50)
    provider = SimProvider(fleet)
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler = Autoscaler(memory_log, publisher, provider, AutoscalerSettings(pools=(pool,), loop_period_s=0.05,
                                                                                reconcile_interval_s=3600))
    scheduler = Scheduler(memory_log, publisher, "s1")
    tasks = [asyncio.create_task(t) for t in (fleet.serve_all(), autoscaler.run(), scheduler.run())]
    try:
        spec = job_spec(cores_mcpu=8000, machine_type="n1-highmem-8")
        await publisher.publish(batch_events(3, "carol", [JobDef(spec=spec)], now_ms()))
        await wait_until(lambda: 3 in resolver.batches and resolver.batches[3].complete, timeout_s=20)
        assert resolver.batches[3].jobs[1].state == SUCCESS
        [name] = provider.created
        assert name.startswith("job-3-1-") and fleet.completed[name] == 1
        await wait_until(lambda: name not in fleet.instances, timeout_s=10)  # deleted once its job finished
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
