"""The scheduling view with snapshots, on the in-memory log and store: a follower starts from the newest
snapshot and ends where a fold from offset 0 ends; a corrupt or outdated snapshot is set aside loudly;
a new scheduler starts from the snapshot its predecessor stored and places work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

import pytest

from events.codec import Codec
from events.publisher import Publisher
from projections.scheduling.follower import StateFollower
from projections.scheduling.state_codec import state_to_plain
from projections.scheduling.view_snapshots import ViewSnapshots, view_name
from projections.snapshots.schedule import SnapshotSettings
from projections.snapshots.store import MemorySnapshotStore
from services.scheduler.service import Scheduler
from services.simworker import SimulatedWorker, SimulatedWorkerFleet
from tests.eventually import eventually
from tests.fakes.streams import StreamShape, build_stream
from tests.unit.scheduler_autoscaler.driver_support import JobDef, StandinResolver, batch_events

CODEC = Codec()
ALWAYS = SnapshotSettings(interval_s=0, max_tail_records=1, max_share=1.0)


def facts(state) -> tuple:  # type: ignore[no-untyped-def]
    """The state's plain form, in an order that does not depend on how the topics interleaved."""
    jobs, instances, attempts, ready, *rest = state_to_plain(state)
    return (sorted(jobs), sorted(instances, key=lambda i: i[0]), sorted(attempts), sorted(ready), *rest)


async def follow(log, topics, snapshots=None) -> StateFollower:  # type: ignore[no-untyped-def]
    follower = StateFollower(log, topics, "test-view", CODEC, snapshots=snapshots)
    await follower.start()
    await follower.catch_up(timeout_s=30)
    await follower.close()
    return follower


async def publish_history(log, topics) -> Publisher:  # type: ignore[no-untyped-def]
    publisher = Publisher(log, topics, CODEC)
    await publisher.publish(build_stream(StreamShape(n_batches=4, jobs_per_batch=30), seed=3).events)
    return publisher


async def test_a_follower_from_the_snapshot_ends_where_a_fold_from_offset_0_ends(memory_log, topics) -> None:
    store = MemorySnapshotStore()
    publisher = await publish_history(memory_log, topics)
    first = await follow(memory_log, topics, ViewSnapshots(store, view_name(topics), ALWAYS))
    assert first.snapshots is not None and first.snapshots.saves >= 1 and not first.snapshots.restored
    tail = build_stream(StreamShape(n_batches=3, jobs_per_batch=20), seed=4, first_batch_id=100).events
    await publisher.publish(tail + tail[:50])  # and re-deliveries of some of it
    restored = await follow(memory_log, topics, ViewSnapshots(store, view_name(topics), SnapshotSettings()))
    assert restored.snapshots is not None and restored.snapshots.restored
    assert restored.state.events_applied < first.state.events_applied + len(tail) + 50 + 1
    from_zero = await follow(memory_log, topics)
    assert facts(restored.state) == facts(from_zero.state)
    assert restored.positions == from_zero.positions


@pytest.mark.parametrize("damage", ["corrupt", "outdated"])
async def test_an_unusable_view_snapshot_is_set_aside_loudly(memory_log, topics, caplog, damage) -> None:
    store = MemorySnapshotStore()
    await publish_history(memory_log, topics)
    await follow(memory_log, topics, ViewSnapshots(store, view_name(topics), ALWAYS))
    stored = store.views[view_name(topics)]
    store.views[view_name(topics)] = (replace(stored, blob=stored.blob[:-1] + b"!") if damage == "corrupt"
                                      else replace(stored, format="0" * 32))
    with caplog.at_level(logging.WARNING):
        again = await follow(memory_log, topics, ViewSnapshots(store, view_name(topics), SnapshotSettings()))
    assert again.snapshots is not None and not again.snapshots.restored and again.snapshots.unusable == 1
    assert ("CORRUPT snapshot of view" if damage == "corrupt" else "outdated snapshot of view") in caplog.text
    assert facts(again.state) == facts((await follow(memory_log, topics)).state)


async def test_a_new_scheduler_starts_from_its_predecessors_snapshot_and_places_work(memory_log, topics) -> None:
    store = MemorySnapshotStore()
    publisher = Publisher(memory_log, topics, CODEC)
    resolver = StandinResolver(memory_log, publisher)
    resolver.start()
    fleet = SimulatedWorkerFleet(memory_log, publisher)
    await fleet.add(SimulatedWorker(name="w1", cores_mcpu=4000))
    serving = asyncio.create_task(fleet.serve_all())
    schedulers: list[Scheduler] = []
    tasks: list[asyncio.Task[None]] = []

    def start_scheduler() -> Scheduler:
        s = Scheduler(memory_log, publisher, f"s{len(schedulers) + 1}",
                      snapshots=ViewSnapshots(store, view_name(topics), ALWAYS))
        schedulers.append(s)
        tasks.append(asyncio.create_task(s.run()))
        return s

    try:
        first = start_scheduler()
        await publisher.publish(batch_events(1, "alice", [JobDef(), JobDef()], int(time.time() * 1000)))
        await eventually(lambda: 1 in resolver.batches and resolver.batches[1].complete, timeout_s=20)
        await eventually(lambda: store.views.get(view_name(topics)) is not None)
        tasks[0].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[0]
        second = start_scheduler()
        await eventually(lambda: second.leading.is_set(), timeout_s=20)
        assert second.follower is not None and second.follower.snapshots is not None
        assert second.follower.snapshots.restored, "the new leader started from the snapshot"
        await publisher.publish(batch_events(2, "bob", [JobDef()], int(time.time() * 1000)))
        await eventually(lambda: 2 in resolver.batches and resolver.batches[2].complete, timeout_s=20)
        assert second.stats.placed >= 1 and second.epoch == 2 and first.epoch == 1
    finally:
        for task in (*tasks, serving):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await fleet.close()
        await resolver.close()


async def test_the_records_before_a_lull_get_their_snapshot_once_the_interval_passes(memory_log, topics) -> None:
    store = MemorySnapshotStore()
    await publish_history(memory_log, topics)
    snapshots = ViewSnapshots(store, view_name(topics), SnapshotSettings(interval_s=0.2, max_tail_records=10**9))
    follower = StateFollower(memory_log, topics, "test-view", CODEC, snapshots=snapshots)
    await follower.start()
    try:
        await follower.catch_up(timeout_s=30)
        deadline = time.monotonic() + 10
        while store.views.get(view_name(topics)) is None and time.monotonic() < deadline:
            await follower.poll(timeout_ms=50)  # nothing more arrives
        stored = store.views.get(view_name(topics))
        assert stored is not None, "a quiet log never got a snapshot of what was folded before it went quiet"
        assert dict(stored.positions) == follower.positions
    finally:
        await follower.close()
