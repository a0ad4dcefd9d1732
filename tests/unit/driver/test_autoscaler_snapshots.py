"""An autoscaler whose view starts from a snapshot knows what one folding from offset 0 knows: the
standing workers and the zone outcomes it reads from instance events the snapshot already covers."""

from __future__ import annotations

from dataclasses import replace

from events.codec import Codec
from events.publisher import Publisher
from projections.scheduling.view_snapshots import ViewSnapshots, view_name
from projections.snapshots.schedule import SnapshotSettings
from projections.snapshots.store import MemorySnapshotStore
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.providers.base import ZoneExhausted
from tests.fakes.instance_provider import MemoryProvider
from tests.unit.driver.driver_events import created, ready
from tests.unit.driver.test_autoscaler_decisions import POOL
from tests.unit.driver.test_autoscaler_loop import Clock, names

ALWAYS = SnapshotSettings(interval_s=0, max_tail_records=1, max_share=1.0)
ZONES = ["zone-a", "zone-b"]


async def start(log, topics, provider, clock, pool, snapshots=None) -> Autoscaler:  # type: ignore[no-untyped-def]
    autoscaler = Autoscaler(log, Publisher(log, topics, Codec()), provider,
                            AutoscalerSettings(pools=(pool,), reconcile_interval_s=0), clock=clock,
                            new_name=names(), snapshots=snapshots)
    await autoscaler.start()
    return autoscaler


def known(autoscaler: Autoscaler) -> tuple:  # type: ignore[type-arg]
    observed = autoscaler.observed
    return (sorted(observed.standing), sorted(observed.requested_zone.items()), observed.zones.weights(ZONES))


async def test_a_restored_autoscaler_knows_the_standing_workers_and_zones_of_a_full_fold(memory_log, topics):
    provider, clock, store = MemoryProvider(), Clock(), MemorySnapshotStore()
    provider.zones = ZONES
    real_create = provider.create

    async def create(spec):  # type: ignore[no-untyped-def]
        if spec.zone == "zone-b":
            raise ZoneExhausted("zone-b has no capacity")
        return await real_create(spec)

    provider.create = create  # type: ignore[method-assign]
    pool = replace(POOL, min_instances=1, max_live_instances=6, max_instances=6, max_new_per_loop=6)
    first = await start(memory_log, topics, provider, clock, pool, ViewSnapshots(store, view_name(topics), ALWAYS))
    await first.loop_once()  # no demand yet: a standing worker keeps the minimum
    clock.now += 1000
    await Publisher(memory_log, topics, Codec()).publish(
        [created(j, cores=4000) for j in range(1, 7)] + [ready(j) for j in range(1, 7)])
    for _ in range(6):
        await first.loop_once()
        clock.now += 1000
    await first.follower.poll(timeout_ms=10)  # type: ignore[union-attr]  # folds (and snapshots) its own events
    weights = {w.zone: w.weight for w in first.observed.zones.weights(ZONES)}
    assert first.observed.standing and weights["zone-b"] < weights["zone-a"]
    await first.close()
    assert store.views.get(view_name(topics)) is not None

    restored = await start(memory_log, topics, provider, clock, pool,
                           ViewSnapshots(store, view_name(topics), SnapshotSettings()))
    from_zero = await start(memory_log, topics, provider, clock, pool)
    try:
        assert restored.follower is not None and restored.follower.snapshots is not None
        assert restored.follower.snapshots.restored
        assert known(restored) == known(from_zero)
        # the running one also forgot the instances that never came up (its loop does that)
        assert known(restored)[0] == known(first)[0] == ["standard-1"]
        assert known(restored)[2] == known(first)[2]
    finally:
        await restored.close()
        await from_zero.close()
