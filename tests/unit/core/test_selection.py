"""Candidate selection (events/core/selection.py): the one function the scheduler and the simulator run."""

from __future__ import annotations

import services.scheduler.plan
import services.simulator.engine
from events.core import selection
from events.core.fairshare import UserDemand, allocate
from events.core.selection import MAX_JOBS_PER_USER, MIN_JOBS_PER_USER, UserQueue, select_candidates


def queue(user: str, cores: list[int], running: int = 0) -> tuple[str, UserQueue[tuple[str, int]]]:
    jobs = [(user, i) for i in range(len(cores))]
    return user, UserQueue(running, sum(cores), jobs)


def test_the_scheduler_and_the_simulator_call_the_same_selection() -> None:
    assert services.scheduler.plan.select_candidates is selection.select_candidates
    assert services.simulator.engine.select_candidates is selection.select_candidates


def test_shares_are_water_filled_and_the_biggest_share_goes_first() -> None:
    queues = dict([queue("bob", [1000] * 2), queue("alice", [1000] * 30), queue("carol", [1000] * 30, running=9000)])
    chosen = select_candidates(queues, 12_000, lambda job: 1000)
    assert chosen.shares == allocate({u: UserDemand(q.running_mcpu, q.ready_mcpu) for u, q in queues.items()},
                                     12_000) == {"alice": 9500, "bob": 2000, "carol": 500}
    users = [user for user, _ in chosen.candidates]
    # alice's share is the biggest: her head first, as many as fit her share and at least MIN_JOBS_PER_USER
    assert users[:MIN_JOBS_PER_USER] == ["alice"] * MIN_JOBS_PER_USER
    assert users[MIN_JOBS_PER_USER:] == ["bob"] * 2 + ["carol"] * MIN_JOBS_PER_USER
    assert chosen.taken == {"alice": MIN_JOBS_PER_USER, "bob": 2, "carol": MIN_JOBS_PER_USER}


def test_a_user_takes_what_fits_its_share_plus_the_next_job() -> None:
    queues = dict([queue("alice", [500] * 200)])
    chosen = select_candidates(queues, 20_000, lambda job: 500)
    assert chosen.taken == {"alice": 41}  # 40 jobs fill 20 cores; the 41st is offered to be explained


def test_a_huge_queue_is_read_lazily_and_only_so_far() -> None:
    read = 0

    def jobs():  # type: ignore[no-untyped-def]
        nonlocal read
        while True:
            read += 1
            yield read

    chosen = select_candidates({"alice": UserQueue(0, 10**12, jobs())}, 10**12, lambda job: 1)
    assert len(chosen.candidates) == MAX_JOBS_PER_USER == read


def test_a_user_with_nothing_ready_is_not_read() -> None:
    def untouchable():  # type: ignore[no-untyped-def]
        raise AssertionError("read the queue of a user with nothing ready")
        yield

    chosen = select_candidates({"alice": UserQueue(4000, 0, untouchable())}, 8000, lambda job: 1000)
    assert chosen.candidates == [] and chosen.taken == {}
