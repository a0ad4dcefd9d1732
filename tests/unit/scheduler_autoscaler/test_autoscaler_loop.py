"""The autoscaler loop on the in-memory log, with an in-memory provider and with the fake Compute API."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from events.catalog import (
    InstanceCreated,
    InstanceDeactivated,
    InstanceDeleted,
    InstanceRequested,
    PoolScalingDecided,
)
from events.codec import Codec
from events.core.autoscale import PoolConfig
from events.publisher import Publisher
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.providers.base import InstanceSpec, QuotaExceeded
from services.providers.gce import GceProvider, GceSettings
from tests.fakes.instance_provider import MemoryProvider
from tests.unit.scheduler_autoscaler.driver_events import (
    accepted,
    activated,
    attempt_done,
    cancelled,
    completed,
    created,
    creating,
    ready,
    requested,
    scheduled,
)
from tests.unit.scheduler_autoscaler.fake_compute import BOOTSTRAP, FakeCompute, FakeComputeServer

POOL = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=4, storage_gib=100,
                  min_instances=1, max_instances=5, max_new_per_loop=3, idle_time_ms=10_000, region="us-central1")


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def instance_events(log, topics, decisions: bool = False):  # type: ignore[no-untyped-def]
    """The instance topic's events by time; the pools' decisions (PoolScalingDecided) only when asked."""
    codec = Codec()
    out = []
    for partition, end in (await log.end_offsets(topics.instance)).items():
        out.extend(codec.decode(r.value) for r in await log.read(topics.instance, partition, 0, max_records=end,
                                                                   timeout_ms=0))
    return sorted((e for e in out if decisions or not isinstance(e, PoolScalingDecided)), key=lambda e: e.occurred_at)


def names() -> object:
    counter = itertools.count(1)
    return lambda pool: f"{pool}-{next(counter)}"


async def make(memory_log, topics, provider, clock, pool=POOL, **settings):  # type: ignore[no-untyped-def]
    publisher = Publisher(memory_log, topics, Codec())
    autoscaler = Autoscaler(memory_log, publisher, provider,
                            AutoscalerSettings(pools=(pool,), reconcile_interval_s=0, **settings),
                            clock=clock, new_name=names())
    await autoscaler.start()
    return autoscaler, publisher


async def test_tops_up_to_the_minimum_then_grows_with_ready_demand_within_the_per_loop_limit(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock)
    await autoscaler.loop_once()
    assert sorted(provider.instances) == ["standard-1"]
    # 20 ready one-core jobs, 4-core workers: 5 needed; one is booting; at most 3 per loop
    await publisher.publish([created(j) for j in range(1, 21)] + [ready(j) for j in range(1, 21)])
    await autoscaler.loop_once()
    assert sorted(provider.instances) == ["standard-1", "standard-2", "standard-3", "standard-4"]
    events = await instance_events(memory_log, topics)
    assert [type(e).__name__ for e in events].count("InstanceRequested") == 4
    assert {e.instance_name for e in events if isinstance(e, InstanceCreated)} == set(provider.instances)
    created_2 = next(e for e in events if isinstance(e, InstanceRequested) and e.instance_name == "standard-2")
    assert (created_2.machine_type, created_2.cores_mcpu, created_2.region) == ("n1-standard-4", 4000, "us-central1")
    await autoscaler.close()


async def test_jobs_no_worker_of_the_pool_can_hold_are_no_demand(memory_log, topics):
    """Before: their cores counted as ready demand, so the autoscaler started instances (4-core ones
    here) that could never run them, for as long as they waited (for ever)."""
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=replace(POOL, min_instances=0))
    too_big = [created(j, cores=8000) for j in range(1, 11)] + [created(11, cores=1000, memory_bytes=64 * 2**30)]
    await publisher.publish([*too_big, *(ready(j) for j in range(1, 12))])
    await autoscaler.loop_once()
    assert provider.instances == {}
    await publisher.publish([created(12, cores=4000), ready(12)])  # one that fits still gets its worker
    await autoscaler.loop_once()
    assert sorted(provider.instances) == ["standard-1"]
    await autoscaler.close()


async def test_jobs_whose_regions_exclude_the_pools_region_are_no_demand(memory_log, topics):
    """A pool runs in one region; an instance there never takes a job whose regions exclude it (the
    matcher filters by region), so such a job (queued before the pools moved: the front refuses new
    ones) starts no instance, and a job allowing the pool's region gets one there."""
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=replace(POOL, min_instances=0))
    await publisher.publish([*(created(j, cores=4000, regions=("europe-west1",)) for j in range(1, 6)),
                             *(ready(j) for j in range(1, 6))])
    await autoscaler.loop_once()
    assert provider.instances == {}
    await publisher.publish([created(6, cores=4000, regions=("europe-west1", "us-central1")), ready(6)])
    await autoscaler.loop_once()
    assert sorted(provider.instances) == ["standard-1"]
    [request] = [e for e in await instance_events(memory_log, topics) if isinstance(e, InstanceRequested)]
    assert request.region == "us-central1"
    await autoscaler.close()


async def test_each_active_instance_reports_its_utilisation(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=replace(POOL, min_instances=0))
    await publisher.publish([activated("w1", cores=4000, at=clock.now), activated("w2", cores=2000, at=clock.now)])
    await autoscaler.loop_once()
    await publisher.publish([created(1, cores=3000), ready(1), *placed(scheduled(1, "a1", "w1", cores=3000))])
    await autoscaler.loop_once()
    assert sample("squall_instance_utilisation_ratio", instance="w1") == 0.75
    assert sample("squall_instance_utilisation_ratio", instance="w2") == 0.0
    await autoscaler.close()


def placed(decision):  # type: ignore[no-untyped-def]
    return [decision, accepted(decision)]


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_refused_create_is_recorded_and_the_pool_waits_before_asking_again(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    provider.fail_next = [QuotaExceeded("Quota 'CPUS' exceeded")]
    autoscaler, _ = await make(memory_log, topics, provider, clock)
    await autoscaler.loop_once()
    events = await instance_events(memory_log, topics)
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in events] == [
        ("InstanceRequested", None), ("InstanceDeactivated", "create_failed"), ("InstanceDeleted", "create_failed")]
    clock.now += 30_000
    await autoscaler.loop_once()
    assert provider.instances == {}  # quota: wait a minute
    clock.now += 31_000
    await autoscaler.loop_once()
    assert list(provider.instances) == ["standard-2"]
    await autoscaler.close()


async def test_idle_instances_go_after_their_idle_time_but_never_below_the_minimum(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=POOL)
    await publisher.publish([requested(n, cores=4000, at=clock.now) for n in ("a", "b", "c")]
                            + [activated(n, cores=4000, at=clock.now) for n in ("a", "b", "c")])
    for n in ("a", "b", "c"):  # the machines the log speaks of exist at the provider
        await provider.create(InstanceSpec(name=n, pool=POOL.name, machine_type="n1-standard-4", cores_mcpu=4000,
                                           memory_bytes=15 * 2**30, storage_gib=100, preemptible=True,
                                           region=POOL.region))
    clock.now += 9_999
    await autoscaler.loop_once()
    assert provider.deleted == []
    clock.now += 1
    await autoscaler.loop_once()
    assert len(provider.deleted) == 2 and len(provider.instances) == 1
    events = await instance_events(memory_log, topics)
    assert sorted(e.instance_name for e in events if isinstance(e, InstanceDeleted)) == sorted(provider.deleted)
    assert {e.reason for e in events if isinstance(e, InstanceDeactivated)} == {"idle"}
    await autoscaler.close()


async def test_a_job_private_request_is_created_and_a_vanished_instance_is_deactivated(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool, vanished_grace_ms=1000)
    await publisher.publish([requested("job-1-1-p1", pool="job-private", cores=8000, at=clock.now,
                                       job_private_for="1:1:p1")])
    await autoscaler.loop_once()
    assert list(provider.instances) == ["job-1-1-p1"]
    provider.instances.clear()  # the VM disappeared behind our back
    clock.now += 1000
    await autoscaler.loop_once()
    events = await instance_events(memory_log, topics)
    assert any(isinstance(e, InstanceDeactivated) and e.reason == "does_not_exist" for e in events)
    await autoscaler.close()


async def test_a_preempted_vm_is_deactivated_as_terminated(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock)
    await autoscaler.loop_once()  # the pool's minimum: one instance
    [name] = provider.instances
    await publisher.publish([activated(name, cores=4000, at=clock.now)])
    provider.status[name] = "terminated"
    await autoscaler.loop_once()
    events = await instance_events(memory_log, topics)
    assert [(e.instance_name, e.reason) for e in events if isinstance(e, InstanceDeactivated)] == [(name, "terminated")]
    await autoscaler.close()


async def test_an_instance_the_provider_preempted_is_deactivated_as_preempted_on_the_next_loop(memory_log, topics):
    provider, clock = MemoryProvider(), Clock()
    autoscaler, publisher = await make(memory_log, topics, provider, clock)
    await autoscaler.loop_once()
    [name] = provider.instances
    await publisher.publish([activated(name, cores=4000, at=clock.now)])
    provider.preempted_names = {name, "someone-elses-vm"}  # names the cluster does not know are ignored
    await autoscaler.loop_once()
    await autoscaler.loop_once()  # reported again: deactivated once
    events = await instance_events(memory_log, topics)
    assert [(e.instance_name, e.reason) for e in events if isinstance(e, InstanceDeactivated)] == [(name, "preempted")]
    assert autoscaler.stats.preempted == 1
    await autoscaler.close()


async def test_the_gce_provider_reports_the_vms_gce_preempted(memory_log, topics):
    clock = Clock()
    with FakeComputeServer(FakeCompute()) as server:
        gce = GceProvider(GceSettings(project="proj", zones=("us-central1-a",), kafka_bootstrap="10.0.0.2:9092",
                                      api_endpoint=server.endpoint, operation_poll_s=0.01, bootstrap=BOOTSTRAP,
                                      preemption_poll_s=0))
        pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=4, min_instances=1,
                          max_instances=2, idle_time_ms=60_000, region="us-central1")
        autoscaler, publisher = await make(memory_log, topics, gce, clock, pool=pool)
        await autoscaler.loop_once()
        [(zone, name)] = list(server.fake.instances)
        await publisher.publish([activated(name, cores=4000, at=clock.now)])
        assert await gce.preempted() == []
        server.fake.preempt(zone, name)
        assert await gce.preempted() == [name]
        await autoscaler.loop_once()
        events = await instance_events(memory_log, topics)
        assert (name, "preempted") in [(e.instance_name, e.reason) for e in events if isinstance(e, InstanceDeactivated)]
        await autoscaler.close()
        await gce.close()


@pytest.mark.parametrize("exhausted", [set(), {"us-central1-a"}])
async def test_with_the_gce_provider_it_inserts_and_deletes_the_right_vms(memory_log, topics, exhausted):
    clock = Clock()
    zones = ("us-central1-a", "us-central1-b")
    with FakeComputeServer(FakeCompute(exhausted_zones=exhausted, fail_next_posts=1)) as server:
        gce = GceProvider(GceSettings(project="proj", zones=zones,
                                      kafka_bootstrap="10.0.0.2:9092", api_endpoint=server.endpoint,
                                      operation_poll_s=0.01, bootstrap=BOOTSTRAP))
        pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=4, min_instances=0,
                          max_instances=2, idle_time_ms=1000, region="us-central1")
        autoscaler, publisher = await make(memory_log, topics, gce, clock, pool=pool)
        await publisher.publish([created(j, cores=2000) for j in (1, 2, 3, 4)] + [ready(j) for j in (1, 2, 3, 4)])
        for _ in range(4):  # a refusal of an exhausted zone only lowers its weight: the next loop asks again
            await autoscaler.loop_once()
            clock.now += 1000
        live = sorted(server.fake.instances)
        assert len(live) == 2 and not {zone for zone, _ in live} & exhausted
        assert {i["machineType"].rsplit("/", 1)[-1] for i in server.fake.instances.values()} == {"n1-standard-4"}
        # each VM is in the zone its InstanceRequested names, drawn by the weights the log gave then
        events = await instance_events(memory_log, topics)
        requests = {e.instance_name: e for e in events if isinstance(e, InstanceRequested)}
        assert all(requests[name].zone == zone for zone, name in live)
        assert_zone_choices_follow_the_log(events, zones)
        failed = [e for e in events if isinstance(e, InstanceDeactivated) and e.reason == "create_failed"]
        assert all(e.zone in exhausted for e in failed)
        if exhausted:  # standard-1 draws us-central1-a (a fixed hash of its name): it is refused there
            assert [(e.instance_name, e.zone) for e in failed][:1] == [("standard-1", "us-central1-a")]
            decided = [e for e in await instance_events(memory_log, topics, decisions=True)
                       if isinstance(e, PoolScalingDecided)]
            a_weight = [next(z.weight for z in d.zones if z.zone == "us-central1-a") for d in decided]
            assert a_weight[0] == 0.5 and a_weight[-1] < 0.5  # the refusals lowered its weight
        # the jobs went elsewhere; both VMs activate and idle past 1 s: both are deleted (min 0)
        await publisher.publish([activated(n, cores=4000, at=clock.now) for _, n in live])
        await publisher.publish([cancelled(j) for j in (1, 2, 3, 4)])
        clock.now += 1000
        await autoscaler.loop_once()
        assert server.fake.instances == {}
        assert sorted(c.path for c in server.fake.deletes()) == sorted(f"instances/{n}" for _, n in live)
        assert {c.zone for c in server.fake.deletes()} == {z for z, _ in live}  # found by provider id
        await autoscaler.close()
        await gce.close()


def assert_zone_choices_follow_the_log(events, zones) -> None:  # type: ignore[no-untyped-def]
    """Replaying the instance events loop by loop (the fake clock stands still within one): every chosen
    zone is choose_zone(weights of the outcomes of earlier loops, seed = the instance's name), and the
    loop's PoolScalingDecided recorded those weights. The choice is a function of the log."""
    from itertools import groupby

    from events.core.zones import ZoneOutcome, ZoneWindow, choose_zone

    window = ZoneWindow()
    for _, group in groupby(events, key=lambda e: e.occurred_at):
        loop = list(group)
        weights = window.weights(list(zones))
        for e in loop:
            if isinstance(e, InstanceRequested) and e.zone is not None:
                assert e.zone == choose_zone(weights, e.instance_name), e
        for e in loop:
            if isinstance(e, InstanceCreated) and e.zone is not None:
                window.push(ZoneOutcome(e.zone, e.instance_name, True))
            elif isinstance(e, InstanceDeactivated) and e.reason == "create_failed" and e.zone is not None:
                window.push(ZoneOutcome(e.zone, e.instance_name, False))


async def test_the_instance_of_a_job_cancelled_while_creating_is_deleted_before_it_boots(memory_log, topics):
    """Hail's canceller: Creating → MJC Cancelled, then delete the VM — without waiting for it to activate."""
    provider, clock = MemoryProvider(), Clock()
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool)
    name = "job-1-1-p1"
    await publisher.publish([created(1, cores=8000, machine_type="n1-standard-8"), ready(1),
                             requested(name, pool="job-private", cores=8000, at=clock.now, job_private_for="1:1:p1"),
                             creating(1, "p1", name)])
    await autoscaler.loop_once()
    assert list(provider.instances) == [name]  # booting
    await publisher.publish([attempt_done(1, "p1", name, outcome="Cancelled"), completed(1, attempt="p1")])
    await autoscaler.loop_once()
    assert provider.instances == {} and provider.deleted == [name]
    events = [e for e in await instance_events(memory_log, topics) if e.instance_name == name]
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in events] == [
        ("InstanceRequested", None), ("InstanceCreated", None), ("InstanceDeactivated", "job_complete"),
        ("InstanceDeleted", "job_complete")]
    await autoscaler.loop_once()
    assert provider.deleted == [name]  # once
    await autoscaler.close()


async def test_a_private_instance_requested_for_a_refused_creating_is_never_created(memory_log, topics):
    """The job was cancelled before the scheduler's JobCreating landed: the core refused it, so the
    instance it asked for is not created, only marked deleted."""
    provider, clock = MemoryProvider(), Clock()
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, min_instances=0)
    autoscaler, publisher = await make(memory_log, topics, provider, clock, pool=pool)
    name = "job-1-1-p1"
    await publisher.publish([created(1, cores=8000, machine_type="n1-standard-8"), ready(1), cancelled(1),
                             creating(1, "p1", name),
                             requested(name, pool="job-private", cores=8000, at=clock.now, job_private_for="1:1:p1")])
    await autoscaler.loop_once()
    assert provider.instances == {} and autoscaler.stats.created == 0
    events = [e for e in await instance_events(memory_log, topics) if e.instance_name == name]
    assert [type(e).__name__ for e in events] == ["InstanceRequested", "InstanceDeactivated", "InstanceDeleted"]
    await autoscaler.close()
