"""The resolver loop with snapshots, on the in-memory log and snapshot store: restarts start from the
snapshot, a completed batch leaves memory and comes back for a late duplicate or a new update, and a
snapshot that is outdated or corrupt is set aside (loudly) for a refold from offset 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

import pytest

from events.catalog import BatchCompleted, JobBecameReady, JobCompleted
from events.log import EventLog, partition_for
from events.topics import Topics
from projections.resolver.service import Resolver, ResolverSettings
from projections.resolver.snapshots import ResolverSnapshots
from projections.snapshots.schedule import SnapshotSettings
from projections.snapshots.store import MemorySnapshotStore
from tests.unit.core.lifecycle_world import BATCH
from tests.unit.resolver.resolver_scenario import CODEC, Scenario, assert_nothing_duplicated_in_effect

FAST = ResolverSettings(poll_timeout_ms=20)
ALWAYS = SnapshotSettings(interval_s=0, max_tail_records=1, max_share=1.0)  # a snapshot after every step


class SnapshottingResolver:
    """Runs a Resolver with snapshots as a task; `restart` crashes it and starts another on the same store."""

    def __init__(self, log: EventLog, topics: Topics, store: MemorySnapshotStore) -> None:
        self.log, self.topics, self.store = log, topics, store
        self.resolvers: list[Resolver] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        resolver = Resolver(self.log, self.topics, f"resolver/{len(self.resolvers) + 1}", FAST, CODEC,
                            snapshots=ResolverSnapshots(self.store, ALWAYS))
        self.resolvers.append(resolver)
        self.task = asyncio.create_task(resolver.run(asyncio.Event()))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def restart(self) -> None:
        await self.stop()
        self.start()

    @property
    def current(self) -> Resolver:
        return self.resolvers[-1]


async def late_events_to_the_completed_batch(scenario: Scenario) -> None:
    """A late duplicate of an old report, then a new update (Hail allows one on a completed batch)."""
    b = scenario.b
    await scenario.publish(b.mjc(1, "a1"))
    await scenario.publish(*b.dag({5: ()}, update_id=2, start_job_id=5))
    await scenario.wait_for("job 5 ready", lambda ev: 5 in {e.job_id for e in ev if isinstance(e, JobBecameReady)})
    await scenario.place("a5", 5)
    await scenario.publish(b.mjc(5, "a5"))
    await scenario.wait_for("job 5 completed and the batch again", lambda ev: 5 in {
        e.job_id for e in ev if isinstance(e, JobCompleted)} and any(
        isinstance(e, BatchCompleted) and e.n_jobs == 5 for e in ev))


async def test_restarts_start_from_snapshots_and_completed_batches_come_back_on_demand(memory_log, topics):
    store = MemorySnapshotStore()
    resolver = SnapshottingResolver(memory_log, topics, store)
    resolver.start()
    try:
        scenario = Scenario(memory_log, topics, resolver.restart, timeout_s=20)
        batch_log = await scenario.run()
        assert_nothing_duplicated_in_effect(batch_log, await scenario.assignments())
        partition = partition_for(str(BATCH).encode(), topics.batch_partitions)
        tp = (topics.batch, partition)
        await scenario.wait_for("the completed batch left memory", lambda _: BATCH not in resolver.current.core.partitions[tp].batches)
        assert (await store.batches(topics.batch, [BATCH]))[0].quiescent
        await late_events_to_the_completed_batch(scenario)
    finally:
        await resolver.stop()
    stats = [r.snapshots.stats for r in resolver.resolvers]  # type: ignore[union-attr]
    assert all(s.refolded_partitions == 0 for s in stats[1:]), "after the first start, every start restores"
    assert stats[-1].restored_partitions == topics.batch_partitions
    assert stats[-1].brought_back >= 1 and stats[-1].evicted >= 1


async def restart_after(scenario: Scenario, resolver: SnapshottingResolver, damage) -> None:  # type: ignore[no-untyped-def]
    await resolver.stop()
    damage()
    resolver.start()


@pytest.mark.parametrize("damage", ["corrupt_row", "outdated_mark", "corrupt_active_row"])
async def test_an_unusable_snapshot_is_refolded_loudly_and_nothing_is_lost(memory_log, topics, caplog, damage):
    store = MemorySnapshotStore()
    resolver = SnapshottingResolver(memory_log, topics, store)
    resolver.start()
    tp = (topics.batch, partition_for(str(BATCH).encode(), topics.batch_partitions))
    try:
        scenario = Scenario(memory_log, topics, resolver.restart, timeout_s=20)
        await scenario.run()
        await scenario.wait_for("the batch stored as quiescent", lambda _: bool(store.rows)
                                and store.rows[(topics.batch, BATCH)][1].quiescent)
        await resolver.stop()
        partition, row = store.rows[(topics.batch, BATCH)]
        if damage == "corrupt_row":  # found when the late events bring it back
            store.rows[(topics.batch, BATCH)] = (partition, replace(row, blob=row.blob[:-3] + b"xyz"))
        elif damage == "corrupt_active_row":  # found by the restore itself
            store.rows[(topics.batch, BATCH)] = (partition, replace(row, blob=row.blob[:40], quiescent=False))
        else:  # written by another version of the resolver
            store.marks[tp] = replace(store.marks[tp], format="0" * 32)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            resolver.start()
            await late_events_to_the_completed_batch(scenario)
    finally:
        await resolver.stop()
    expected = "outdated snapshot" if damage == "outdated_mark" else "CORRUPT snapshot"
    assert any(expected in r.getMessage() and f"[{tp[1]}]" in r.getMessage() for r in caplog.records), caplog.text
    assert resolver.current.snapshots.stats.unusable == 1  # type: ignore[union-attr]
    assert resolver.current.snapshots.stats.refolded_partitions >= 1  # type: ignore[union-attr]
    # the refold rewrote the partition's rows in the current format
    assert store.rows[(topics.batch, BATCH)][1].format == resolver.current.snapshots.format  # type: ignore[union-attr]
    assert store.marks[tp].format == resolver.current.snapshots.format  # type: ignore[union-attr]
    assert CODEC is not None
