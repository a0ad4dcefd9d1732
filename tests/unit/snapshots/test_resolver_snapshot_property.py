"""Property: a snapshot of the resolver's fold at any point, plus the tail of the log, is the full fold.

The subject folds a random history live (ResolverCore.step, as the service does), taking snapshots at
random points into the in-memory store (which also drops completed batches from memory, to be brought
back when a late event names them); a second resolver then starts from the last snapshot and folds
the tail, re-deliveries included. Every batch's state (every stored field) and what the resolver
derives after taking over must equal those of a resolver that folded the whole log from offset 0.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.log import Record
from projections.resolver.batch_codec import batch_to_plain, decode_batch
from projections.resolver.core import ResolverCore
from projections.resolver.snapshots import ResolverSnapshots
from projections.snapshots.schedule import SnapshotSettings
from projections.snapshots.store import MemorySnapshotStore
from tests.unit.snapshots.history import CODEC, TOPIC, history, records

TP = (TOPIC, 0)
NEVER = SnapshotSettings(interval_s=1e9, max_tail_records=10**12)  # saves only when the test says


def reference(recs: list[Record]) -> tuple[ResolverCore, list]:
    core = ResolverCore("p", CODEC)
    derived = core.rebuild(TP, recs)
    return core, derived


async def step_until(core: ResolverCore, snaps: ResolverSnapshots, recs: list[Record], start: int, end: int,
                     chunk: int) -> None:
    for at in range(start, end, chunk):
        incoming = core.decode(recs[at:min(at + chunk, end)])
        await snaps.bring_back(core, core.wanted_batches(incoming))
        core.step_decoded(incoming)


async def take_over(store: MemorySnapshotStore, recs: list[Record]) -> tuple[ResolverCore, list]:
    """A new owner: from the stored snapshot (or offset 0), the tail to the end, then what is missing."""
    core, snaps = ResolverCore("p", CODEC), ResolverSnapshots(store, NEVER)
    if await snaps.restore(core, TP) is None:
        core.begin_rebuild(TP)
    incoming = core.decode(recs[core.partitions[TP].next_offset:])
    await snaps.bring_back(core, core.wanted_batches(incoming))
    core.fold_rebuilt_decoded(TP, incoming)
    return core, core.finish_rebuild(TP)


async def states(core: ResolverCore, store: MemorySnapshotStore) -> dict[int, tuple]:
    """Every batch the partition has seen: in memory, or stored when it left memory."""
    out = {b: batch_to_plain(s) for b, s in core.partitions[TP].batches.items()}
    for row in await store.batches(TOPIC, range(0, 1000)):
        if row.batch_id not in out:
            assert row.quiescent, "only quiescent batches leave memory"
            out[row.batch_id] = batch_to_plain(decode_batch(row.blob))
    return out




@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_snapshot_at_any_point_plus_the_tail_is_the_full_fold(data: st.DataObject) -> None:
    events, n_late = history(data)
    recs = records(events)
    cuts = data.draw(st.lists(st.integers(0, len(recs)), min_size=1, max_size=4))
    if n_late and data.draw(st.booleans()):
        cuts.append(len(recs) - n_late)  # completed batches are stored and gone when their late copies come
    cuts.sort()
    chunk = data.draw(st.integers(1, 50))
    ref, ref_derived = reference(recs)

    async def run() -> None:
        store = MemorySnapshotStore()
        owner, snaps = ResolverCore("p", CODEC), ResolverSnapshots(store, NEVER)
        owner.begin_rebuild(TP)
        owner.finish_rebuild(TP)
        at = 0
        for cut in cuts:
            await step_until(owner, snaps, recs, at, cut, chunk)
            at = cut
            assert await snaps.save(owner, [TP])
        core, derived = await take_over(store, recs)
        assert core.partitions[TP].next_offset == len(recs)
        assert derived == ref_derived
        assert await states(core, store) == {b: batch_to_plain(s) for b, s in ref.partitions[TP].batches.items()}

    asyncio.run(run())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_an_owner_behind_folds_the_same_as_one_ahead_that_stored_batches_meanwhile(data: st.DataObject) -> None:
    """During a rebalance two resolvers may own a partition: the one behind brings back batches the one
    ahead stored (and dropped) further on in the log, and must neither fold their events twice nor miss any."""
    recs = records(history(data)[0])
    early = data.draw(st.integers(0, len(recs)))
    late = data.draw(st.integers(early, len(recs)))
    ref, ref_derived = reference(recs)

    async def run() -> None:
        store = MemorySnapshotStore()
        ahead, snaps = ResolverCore("p", CODEC), ResolverSnapshots(store, NEVER)
        ahead.begin_rebuild(TP)
        ahead.finish_rebuild(TP)
        await step_until(ahead, snaps, recs, 0, early, 7)
        assert await snaps.save(ahead, [TP])
        behind, behind_snaps = ResolverCore("p", CODEC), ResolverSnapshots(store, NEVER)
        assert await behind_snaps.restore(behind, TP) is not None
        await step_until(ahead, snaps, recs, early, late, 7)
        assert await snaps.save(ahead, [TP])  # rows further on than `behind` has folded
        await step_until(behind, behind_snaps, recs, early, len(recs), 5)
        assert behind.partitions[TP].next_offset == len(recs)
        got = {b: batch_to_plain(s) for b, s in behind.partitions[TP].batches.items()}
        for row in await store.batches(TOPIC, range(0, 1000)):
            got.setdefault(row.batch_id, batch_to_plain(decode_batch(row.blob)) if row.quiescent else None)
        assert got == {b: batch_to_plain(s) for b, s in ref.partitions[TP].batches.items()}
        assert ref_derived is not None

    asyncio.run(run())
