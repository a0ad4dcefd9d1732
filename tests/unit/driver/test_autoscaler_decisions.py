"""The autoscaler loop's Hail semantics on the in-memory log: standing workers, the look-ahead window,
max_live_instances, zones, and the PoolScalingDecided events that record why."""

from __future__ import annotations

from dataclasses import replace

from events.catalog import InstanceCreated, InstanceDeactivated, InstanceRequested, PoolScalingDecided
from events.core.autoscale import PoolConfig
from events.core.autoscale_explain import describe_pool_decision, waiting_on_pool
from services.providers.base import QuotaExceeded, ZoneExhausted
from tests.fakes.instance_provider import MemoryProvider
from tests.unit.driver.driver_events import activated, created, ready, scheduled
from tests.unit.driver.test_autoscaler_loop import Clock, instance_events, make

POOL = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=4, storage_gib=100,
                  min_instances=1, standing_worker_cores=1, max_live_instances=3, max_instances=4,
                  max_new_per_loop=5, idle_time_ms=10_000, standing_worker_idle_time_ms=60_000, region="us-central1")


async def decisions(log, topics) -> list[PoolScalingDecided]:  # type: ignore[no-untyped-def]
    return [e for e in await instance_events(log, topics, decisions=True) if isinstance(e, PoolScalingDecided)]


async def test_the_minimum_is_kept_with_standing_workers_of_their_own_size(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, _ = await make(memory_log, topics, provider, clock, pool=POOL)
    await autoscaler.loop_once()
    (spec,) = provider.instances.values()
    assert (spec.cores_mcpu, spec.machine_type, spec.standing) == (1000, "n1-standard-1", True)
    (request,) = [e for e in await instance_events(memory_log, topics) if isinstance(e, InstanceRequested)]
    assert request.standing and request.cores_mcpu == 1000
    (decision,) = await decisions(memory_log, topics)
    assert (decision.standing_requested, decision.requested, decision.min_instances) == (1, 0, 1)
    assert "standing worker(s) of 1 cores to keep min_instances 1" in describe_pool_decision(decision.to_avro())
    await autoscaler.loop_once()  # it sees its worker booting: news
    await autoscaler.loop_once()  # nothing changed: nothing appended
    first, second = await decisions(memory_log, topics)
    assert (second.pending, second.standing_requested) == (1, 0) and first.event_id != second.event_id
    await autoscaler.close()


async def test_an_idle_standing_worker_outlives_the_workers_idle_time(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=replace(POOL, min_instances=0))
    await publisher.publish([activated("w", cores=4000, at=clock.now)])
    autoscaler.observed.standing.add("w")  # as if its InstanceRequested said standing
    clock.now += 30_000  # past idle_time_ms, not past standing_worker_idle_time_ms
    await autoscaler.loop_once()
    assert provider.deleted == []
    clock.now += 60_000
    await autoscaler.loop_once()
    assert provider.deleted == ["w"]
    await autoscaler.close()


async def test_max_live_instances_holds_the_pool_and_the_decision_says_so(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=POOL)
    await publisher.publish([created(j, cores=1000) for j in range(1, 41)] + [ready(j) for j in range(1, 41)])
    await autoscaler.loop_once()
    # 40 cores ready, 4-core workers: 10 wanted; max_live_instances 3 allows 3
    assert len(provider.instances) == 3
    last = (await decisions(memory_log, topics))[-1]
    assert (last.requested, last.limited_by, last.max_live_instances) == (3, "max_live_instances", 3)
    assert waiting_on_pool(last.to_avro()).startswith("the autoscaler cannot add instances: the pool is at "
                                                       "max_live_instances (3 pending or active)")
    await autoscaler.close()


async def test_demand_is_the_look_ahead_window_not_the_whole_queue(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    # a 1-second window (one scheduling pass): a lone user's 300 jobs of the 400 ready count
    pool = replace(POOL, min_instances=0, max_live_instances=200, max_instances=200, max_new_per_loop=100,
                   scheduling_window_ms=1_000)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool, loop_period_s=1.0)
    await publisher.publish([created(j, cores=1000) for j in range(1, 401)] + [ready(j) for j in range(1, 401)])
    await autoscaler.loop_once()
    (decision,) = await decisions(memory_log, topics)
    assert (decision.ready_mcpu, decision.demand_mcpu, decision.demand_truncated) == (400_000, 300_000, False)
    assert [(u.user, u.jobs_per_pass, u.n_jobs) for u in decision.users] == [("alice", 300, 300)]
    assert decision.requested == 75 and len(provider.instances) == 75  # 300 cores / 4-core workers
    await autoscaler.close()


async def test_running_work_shares_the_window_by_fair_share(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    pool = replace(POOL, min_instances=0, max_live_instances=50, max_instances=50, max_new_per_loop=2)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool)
    events = [activated("busy", cores=4000, at=clock.now)]
    events += [created(j, user="alice", cores=1000) for j in range(1, 5)] + [ready(j) for j in range(1, 5)]
    events += [scheduled(j, f"a{j}", "busy") for j in range(1, 5)]  # alice runs 4 cores
    events += [created(j, user=u, cores=1000) for j, u in ((5, "alice"), (6, "bob"))] + [ready(5), ready(6)]
    await publisher.publish(events)
    await autoscaler.loop_once()
    (decision,) = await decisions(memory_log, topics)
    shares = {u.user: u.share_mcpu for u in decision.users}
    assert set(shares) == {"alice", "bob"} and shares["bob"] >= shares["alice"]  # bob runs nothing yet
    await autoscaler.close()


async def test_a_full_zone_loses_weight_and_the_pool_keeps_growing_elsewhere(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    provider.zones = ["zone-a", "zone-b"]
    refused: list[str] = []
    real_create = provider.create

    async def create(spec):  # type: ignore[no-untyped-def]
        if spec.zone == "zone-b":
            refused.append(spec.name)
            raise ZoneExhausted("zone-b has no capacity")
        return await real_create(spec)

    provider.create = create  # type: ignore[method-assign]
    pool = replace(POOL, min_instances=0, max_live_instances=6, max_instances=6, max_new_per_loop=6)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool)
    await publisher.publish([created(j, cores=4000) for j in range(1, 7)] + [ready(j) for j in range(1, 7)])
    for _ in range(6):
        await autoscaler.loop_once()
        clock.now += 1000
    assert len(provider.instances) == 6 and {s.zone for s in provider.instances.values()} == {"zone-a"}
    assert refused, "with equal weights at first, some draws land in zone-b"
    events = await instance_events(memory_log, topics)
    failed = {e.instance_name: e.zone for e in events if isinstance(e, InstanceDeactivated)}
    assert failed == dict.fromkeys(refused, "zone-b")
    assert all(e.zone == "zone-a" for e in events if isinstance(e, InstanceCreated))
    weights = {z.zone: z for z in (await decisions(memory_log, topics))[-1].zones}
    assert weights["zone-b"].attempts == len(refused) and weights["zone-b"].successes == 0
    assert weights["zone-b"].weight < weights["zone-a"].weight
    await autoscaler.close()


async def test_a_quota_refusal_pauses_the_pool_and_the_decision_records_it(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    provider.fail_next = [QuotaExceeded("Quota 'CPUS' exceeded")]
    autoscaler, _ = await make(memory_log, topics, provider, clock, pool=POOL)
    await autoscaler.loop_once()
    clock.now += 1000
    await autoscaler.loop_once()
    last = (await decisions(memory_log, topics))[-1]
    assert last.paused_until is not None and last.standing_requested == 0
    assert "asks again later" in describe_pool_decision(last.to_avro())
    await autoscaler.close()
