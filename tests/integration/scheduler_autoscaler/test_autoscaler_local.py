"""The autoscaler with the local provider on the real broker: worker processes come and go with demand.

Workers are `python -m services.simworker` processes (same flags as the worker agent), started by
the local provider; the scheduler and the lifecycle core (StandinResolver) run in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from events.catalog import InstanceCreated, InstanceDeleted, InstanceRequested
from events.codec import Codec
from events.core.autoscale import PoolConfig
from events.process.config import ServiceConfig
from events.publisher import Publisher
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.providers.local import SIMULATED_WORKER_COMMAND, LocalProvider
from services.scheduler.service import Scheduler
from tests.eventually import eventually
from tests.integration.scheduler_autoscaler.test_driver_on_kafka import read_topic
from tests.unit.scheduler_autoscaler.driver_support import (
    BatchWatcher,
    JobDef,
    ResolverProcess,
    batch_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_scales_up_for_demand_and_back_down_to_the_minimum(kafka_log, kafka_bootstrap, topics,
                                                                 tmp_path) -> None:
    publisher = Publisher(kafka_log, topics, Codec())
    config = ServiceConfig(bootstrap_servers=kafka_bootstrap, database_url="", home=tmp_path,
                           topic_prefix=topics.prefix)
    provider = LocalProvider(config, SIMULATED_WORKER_COMMAND,
                             ["--job-duration-ms", "1500", "--heartbeat-interval", "1"], stop_timeout_s=10)
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=2, storage_gib=10,
                      min_instances=1, max_instances=3, idle_time_ms=2000, region="local")
    autoscaler = Autoscaler(kafka_log, publisher, provider, AutoscalerSettings(pools=(pool,), loop_period_s=0.5))
    resolver = ResolverProcess(kafka_log, publisher)
    resolver.start()
    watcher = BatchWatcher(kafka_log, publisher)
    watcher.start()
    tasks = [asyncio.create_task(autoscaler.run()),
             asyncio.create_task(Scheduler(kafka_log, publisher, "s1").run())]
    try:
        # from nothing to the pool's minimum, with no work at all
        await eventually(lambda: len(provider._children) == 1 and autoscaler.stats.created == 1, timeout_s=30)
        assert len(await provider.list()) == 1
        # 12 one-core jobs of 1.5 s: more than 3 two-core workers can hold, so the pool grows to its max
        await publisher.publish(batch_events(1, "alice", [JobDef() for _ in range(12)], int(time.time() * 1000)))
        await eventually(lambda: len([i for i in autoscaler.follower.state.active_instances()]) == 3, timeout_s=60)
        assert autoscaler.stats.requested == 3
        await eventually(lambda: 1 in watcher.complete, timeout_s=90)
        # idle for 2 s: back to the minimum, never below
        await eventually(lambda: autoscaler.stats.deleted == 2, timeout_s=60)
        await asyncio.sleep(3 * 0.5 + 2.0)
        assert autoscaler.stats.deleted == 2
        assert len(await provider.list()) == 1
        events = await read_topic(kafka_log, topics.instance)
        assert sum(isinstance(e, InstanceRequested) for e in events) == 3
        assert sum(isinstance(e, InstanceCreated) for e in events) == 3
        assert sorted(e.reason for e in events if isinstance(e, InstanceDeleted)) == ["idle", "idle"]
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await watcher.close()
        await resolver.close()
        for instance in await provider.list():
            await provider.delete(instance.name)
