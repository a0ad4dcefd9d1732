"""Property: a snapshot of the scheduling view at any point, plus the tail, is the full fold.

Random histories of several batches (tests/unit/snapshots/history.py) interleaved with the lives of
the instances their decisions name (requested, created, activated, heartbeats, deactivated, deleted;
job-private ones for JobCreating) are folded by SchedulingState. The state is sealed at a random point
(state_codec), opened again, and folded on with the rest of the log, re-deliveries of earlier events
included: every attribute must equal the state of the fold that never stopped.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import catalog as ev
from events.catalog import Event
from projections.scheduling.state import SchedulingState
from projections.scheduling.state_codec import decode_state, encode_state, state_to_plain
from projections.scheduling.view_snapshots import ViewSnapshots
from projections.snapshots.schedule import SnapshotSettings
from projections.snapshots.store import MemorySnapshotStore
from tests.unit.snapshots.history import history

P = "test"


def instance_life(data: st.DataObject, name: str, t0: int, private_for: str | None = None) -> list[Event]:
    pool = "job-private" if private_for else "standard"
    out: list[Event] = [
        ev.InstanceRequested(event_id=f"ir-{name}", occurred_at=t0, producer=P, instance_name=name, pool=pool,
                             provider="local", machine_type="m", cores_mcpu=4000, memory_bytes=2**34, storage_gib=10,
                             preemptible=True, region="local", job_private_for=private_for),
        ev.InstanceCreated(event_id=f"ic-{name}", occurred_at=t0 + 1, producer=P, instance_name=name, provider="local",
                           provider_id=f"p-{name}"),
        ev.InstanceActivated(event_id=f"ia-{name}", occurred_at=t0 + 2, producer=P, instance_name=name, pool=pool,
                             cores_mcpu=4000, memory_bytes=2**34, storage_gib=10, region="local", preemptible=True)]
    out += [ev.InstanceHeartbeat(event_id=f"ih-{name}-{i}", occurred_at=t0 + 10 * i, producer=P, instance_name=name,
                                 running_attempt_ids=()) for i in range(data.draw(st.integers(0, 3)))]
    if data.draw(st.booleans()):
        out += [ev.InstanceDeactivated(event_id=f"id-{name}", occurred_at=t0 + 50, producer=P, instance_name=name,
                                       reason="idle"),
                ev.InstanceDeleted(event_id=f"ix-{name}", occurred_at=t0 + 60, producer=P, instance_name=name,
                                   reason="idle")]
    return out


def scheduling_log(data: st.DataObject) -> list[Event]:
    """Batch events and instance lives, interleaved (each keeps its own order; heartbeats anywhere)."""
    batch_events, _ = history(data)
    lives = [instance_life(data, name, 1_700_000_000_000) for name in ("i-1", "i-2")]
    lives += [instance_life(data, e.instance_name, e.occurred_at, f"{e.batch_id}:{e.job_id}:{e.attempt_id}")
              for e in batch_events if isinstance(e, ev.JobCreating)][:4]
    streams = [batch_events, *lives]
    at = [0] * len(streams)
    out: list[Event] = []
    while any(i < len(s) for i, s in zip(at, streams, strict=True)):
        k = data.draw(st.sampled_from([j for j, s in enumerate(streams) if at[j] < len(s)]))
        out.append(streams[k][at[k]])
        at[k] += 1
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_snapshot_at_any_point_plus_the_tail_is_the_full_fold(data: st.DataObject) -> None:
    log = scheduling_log(data)
    cut = data.draw(st.integers(0, len(log)))
    tail = log[cut:] + [log[i] for i in data.draw(st.lists(st.integers(0, len(log) - 1), max_size=5))]

    full = SchedulingState()
    for e in log[:cut] + tail:
        full.apply(e)

    head = SchedulingState()
    for e in log[:cut]:
        head.apply(e)
    restored = decode_state(encode_state(head))
    assert state_to_plain(restored) == state_to_plain(head)
    for e in tail:
        restored.apply(e)
    assert state_to_plain(restored) == state_to_plain(full)
    # and what the scheduler asks of it
    assert {k: list(q) for k, q in restored.ready.items()} == {k: list(q) for k, q in full.ready.items()}
    assert {p: restored.user_cores(p) for p in full.pools()} == {p: full.user_cores(p) for p in full.pools()}


def test_followers_share_the_newest_snapshot_and_a_stale_one_is_not_stored() -> None:
    store = MemorySnapshotStore()
    a = ViewSnapshots(store, "v", SnapshotSettings())
    b = ViewSnapshots(store, "v", SnapshotSettings())
    state = SchedulingState()

    async def run() -> None:
        assert await a.save(state, {("t", 0): 10, ("t", 1): 3})
        assert not await b.save(state, {("t", 0): 9, ("t", 1): 30}), "behind in one partition: keep the stored one"
        assert await b.save(state, {("t", 0): 10, ("t", 1): 30})
        loaded = await a.load()
        assert loaded is not None and loaded[1] == {("t", 0): 10, ("t", 1): 30}

    asyncio.run(run())
