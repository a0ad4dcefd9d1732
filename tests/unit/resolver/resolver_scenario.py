"""A DAG batch driven through a running resolver, with restarts in the middle; shared by the
in-memory test (tests/unit/resolver) and the real-broker test (tests/integration/resolver).

The test plays front end, scheduler and worker: it appends their events and waits for the
resolver's. `restart` is whatever "kill the resolver and start it again" means for the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from events.catalog import (
    AttemptAssigned,
    BatchCompleted,
    Event,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
)
from events.codec import Codec
from events.core.lifecycle import fold
from events.log import EventLog, partition_for
from events.publisher import Publisher
from events.topics import Topics
from tests.unit.core.lifecycle_world import BATCH, Builder

CODEC = Codec()


async def read_topic(log: EventLog, topic: str, partitions: list[int] | None = None) -> list[Event]:
    out: list[Event] = []
    ends = await log.end_offsets(topic)
    for partition, end in sorted(ends.items()):
        if partitions is not None and partition not in partitions:
            continue
        offset = 0
        while offset < end:
            records = await log.read(topic, partition, offset, max_records=10_000, timeout_ms=500)
            out += [CODEC.decode(r.value) for r in records if r.offset < end]
            offset = records[-1].offset + 1 if records else offset
    return out


class Scenario:
    def __init__(self, log: EventLog, topics: Topics, restart: Callable[[], Awaitable[Any]],
                 timeout_s: float = 60.0) -> None:
        self.log = log
        self.topics = topics
        self.publisher = Publisher(log, topics, CODEC)
        self.restart = restart
        self.timeout_s = timeout_s
        self.b = Builder()

    async def batch_log(self) -> list[Event]:
        n = await self.log.partitions(self.topics.batch)
        return await read_topic(self.log, self.topics.batch, [partition_for(str(BATCH).encode(), n)])

    async def assignments(self) -> list[Event]:
        return await read_topic(self.log, self.topics.assignment)

    async def wait_for(self, what: str, predicate: Callable[[list[Event]], bool], assignments: bool = False) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            events = await (self.assignments() if assignments else self.batch_log())
            if predicate(events):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    async def publish(self, *events: Event) -> None:
        await self.publisher.publish(list(events))

    async def place(self, attempt_id: str, job_id: int) -> None:
        """The scheduler's SJ; then wait, as a worker does, for the assignment."""
        await self.publish(self.b.sj(job_id, attempt_id))
        await self.wait_for(f"attempt {attempt_id} assigned", lambda ev: attempt_id in _attempts(ev), assignments=True)

    async def run(self) -> list[Event]:
        """Jobs 1 and 2 are roots, 3 needs both, 4 needs 3; job 2 fails once for a system reason."""
        b = self.b
        await self.publish(b.batch(), *b.dag({1: (), 2: (), 3: (1, 2), 4: (3,)}))
        await self.wait_for("jobs 1 and 2 ready", lambda ev: _ids(ev, JobBecameReady) == {1, 2})

        await self.publish(b.sj(1, "a1"), b.sj(2, "a2"))
        await self.wait_for("attempts a1, a2 assigned", lambda ev: _attempts(ev) == {"a1", "a2"}, assignments=True)

        await self.restart()  # between two steps
        await self.publish(b.mjs(1, "a1"), b.mjc(1, "a1"), b.mjc(2, "a2", "Error", "instance_lost", None))
        await self.restart()  # probably in the middle of deriving
        await self.wait_for("job 1 completed and job 2 retried", lambda ev: _ids(ev, JobCompleted) == {1}
                            and any(isinstance(e, JobBecameReady) and e.reason == "retry" for e in ev))

        await self.place("a2-retry", 2)
        await self.publish(b.mjc(2, "a2-retry"))
        await self.wait_for("job 3 ready", lambda ev: 3 in _ids(ev, JobBecameReady))
        await self.place("a3", 3)
        await self.publish(b.mjc(3, "a3", "Failed", "nonzero_exit", 1))
        await self.restart()
        await self.wait_for("batch completed", lambda ev: any(isinstance(e, BatchCompleted) for e in ev))
        return await self.batch_log()


def _ids(events: list[Event], kind: type) -> set[int]:
    return {e.job_id for e in events if isinstance(e, kind)}  # type: ignore[attr-defined]


def _attempts(events: list[Event]) -> set[str]:
    return {e.attempt_id for e in events if isinstance(e, AttemptAssigned)}


def assert_nothing_duplicated_in_effect(batch_log: list[Event], assignments: list[Event]) -> None:
    """Re-derived events may appear twice, but always with the same id, and the fold ignores the copy."""
    state = fold(batch_log)
    assert state is not None and state.complete
    assert [state.jobs[j].state for j in (1, 2, 3, 4)] == ["Success", "Success", "Failed", "Cancelled"]
    assert (state.n_succeeded, state.n_failed, state.n_cancelled) == (2, 1, 1)
    assert state.jobs[2].attempt_ids == ("a2", "a2-retry")
    first_copies: dict[str, Event] = {}
    for e in batch_log:
        first_copies.setdefault(e.event_id, e)
    deduplicated = fold(first_copies.values())
    assert deduplicated is not None and deduplicated.snapshot() == state.snapshot()
    for kind, per in ((JobCompleted, 4 - 1), (JobCancelled, 1), (BatchCompleted, 1)):
        distinct = {e.event_id for e in batch_log if isinstance(e, kind)}
        assert len(distinct) == per, f"{kind.__name__}: {len(distinct)} distinct events, expected {per}"
    assigned = {e.event_id: e.attempt_id for e in assignments if isinstance(e, AttemptAssigned)}
    assert sorted(assigned.values()) == ["a1", "a2", "a2-retry", "a3"], f"one assignment per attempt: {assigned}"
