"""The journal survives restarts (and torn writes); the capacity semaphore is FIFO and cancellable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.eventually import eventually
from tests.unit.worker.factories import assignment
from worker.capacity import CapacityExceeded, WeightedSemaphore
from worker.journal import Journal, JournalCorrupt, key_of


def test_journal_replays_state_and_compacts_finished_attempts(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    a, b = assignment("w", ("true",), job_id=1), assignment("w", ("true",), job_id=2)
    j.record_read([(10, a), (11, b), (12, a)], kills=[key_of(b)], next_offset=13)
    j.started(key_of(a), 1234)
    j.reported(key_of(a))
    j.cleaned(key_of(a))
    j.close()
    again = Journal(tmp_path)
    assert again.next_offset == 13
    assert list(again.attempts) == [key_of(b)]  # a was finished: compacted away
    assert again.attempts[key_of(b)].kill_requested and again.attempts[key_of(b)].assignment == b
    again.close()


def test_a_torn_last_line_is_ignored_but_corruption_elsewhere_is_not(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    a = assignment("w", ("true",), job_id=1)
    j.record_read([(0, a)], [], 1)
    j.close()
    with open(tmp_path / "journal.jsonl", "a") as f:
        f.write('{"t": "started", "ke')
    torn = Journal(tmp_path)
    assert key_of(a) in torn.attempts
    torn.close()
    (tmp_path / "journal.jsonl").write_text('{"t": "offset", "next": 1}\nnot json\n{"t": "offset", "next": 2}\n')
    with pytest.raises(JournalCorrupt, match="journal.jsonl:2"):
        Journal(tmp_path)


async def test_semaphore_is_fifo_and_a_cancelled_waiter_gives_way() -> None:
    sem = WeightedSemaphore(1000)
    assert await sem.acquire(750)
    order: list[str] = []

    async def take(name: str, w: int, cancel: asyncio.Event | None = None) -> None:
        if await sem.acquire(w, cancel):
            order.append(name)

    cancel = asyncio.Event()
    big = asyncio.create_task(take("big", 1000, cancel))
    small = asyncio.create_task(take("small", 250))
    await eventually(lambda: len(sem._waiters) == 2, what="both takers queued")
    assert order == []  # small fits but must not overtake big (FIFO): both queue, neither holds
    cancel.set()
    await asyncio.gather(big, small)
    assert order == ["small"] and sem.available == 0
    sem.release(250)
    sem.release(750)
    assert sem.available == 1000
    with pytest.raises(CapacityExceeded):
        await sem.acquire(1001)


def test_an_attempt_finished_before_a_restart_is_never_accepted_again(tmp_path) -> None:
    """The resolver re-sends assignments after its own restart; compaction must not forget them."""
    from events.catalog import JobAttemptCompleted
    from worker.journal import Journal, key_of

    a = assignment("w1")
    journal = Journal(tmp_path)
    journal.record_read([(0, a)], [], 1)
    k = key_of(a)
    journal.started(k, 1)
    mjc = JobAttemptCompleted(event_id="e", occurred_at=2, producer="p", batch_id=a.batch_id, job_id=a.job_id,
                              attempt_id=a.attempt_id, instance_name=a.instance_name, outcome="Success",
                              out_of_memory=False, ended_at=2, steps=())
    journal.completed(k, mjc)
    journal.reported(k)
    journal.cleaned(k)
    journal.close()

    restarted = Journal(tmp_path)  # compacts: the finished attempt's record is dropped
    assert k not in restarted.attempts and k in restarted.done
    restarted.record_read([(5, a)], [], 6)  # the same assignment, re-sent later in the log
    assert k not in restarted.attempts
    restarted.close()
    again = Journal(tmp_path)
    assert k in again.done  # and it survives a second compaction
    again.close()
