"""Candidate selection: which ready jobs of one pool a scheduling pass offers the matcher, in what order.

Hail's order: each user's share of the pool's free cores is water-filled over its running and
ready cores (`fairshare.allocate`); users are then taken largest share first (name breaks ties),
each from the head of its ready queue: the jobs that fit the share, plus the next one (so the
matcher can say why it waits), and never fewer than MIN_JOBS_PER_USER nor more than
MAX_JOBS_PER_USER (a pass stays short however long a queue is). The matcher then places them
in this order, best fit, stopping each user at its share (`matching.match`).

What is shared out is the pool's *usable* free cores (`usable_mcpu`): on each active instance, the
free cores that jobs of the pool's smallest ready size can fill. Hail shares all free cores; the
fragments no ready job fits (a quarter core left on a busy worker) then count in every share, and
the users served first fill the usable room before the others get theirs: in the 10,000-instance
simulation the fair-share error once saturated reached 10 % that way, against 3 % with usable cores.

This is the one selection the deployed scheduler (services/scheduler/plan.py) and the fleet
simulator (services/simulator/engine.py) both run, so the simulator's figures describe the
deployed policy. Pure and generic over what a queue holds: the scheduler passes its job entries,
the simulator job numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from events.core.fairshare import UserDemand, allocate

MIN_JOBS_PER_USER = 20  # Hail looks at no fewer than 20 jobs of a user per pass
MAX_JOBS_PER_USER = 5_000  # keeps one pass short when a queue is huge

J = TypeVar("J")


@dataclass(frozen=True, slots=True)
class UserQueue(Generic[J]):
    """One user's demand in a pool and its schedulable ready jobs, head first.

    `jobs` is read lazily and only as far as the selection goes, so a caller may pass a filtering
    generator over a queue of millions (skipping jobs in backoff or already placed)."""

    running_mcpu: int
    ready_mcpu: int
    jobs: Iterable[J]


@dataclass(slots=True)
class Selection(Generic[J]):
    shares: dict[str, int] = field(default_factory=dict)  # user -> mCPU it may start this pass
    candidates: list[J] = field(default_factory=list)  # in the order the matcher must take them
    taken: dict[str, int] = field(default_factory=dict)  # user -> how many of its queue's head were taken


def usable_mcpu(free: Iterable[tuple[int, int]], job_mcpu: int) -> int:
    """The free cores jobs of `job_mcpu` each could fill: `free` holds (free mCPU, how many instances
    have that much) for the pool's active instances; fragments smaller than a job count for nothing."""
    if job_mcpu <= 0:
        return sum(max(0, mcpu) * n for mcpu, n in free)
    return sum(mcpu // job_mcpu * job_mcpu * n for mcpu, n in free if mcpu >= job_mcpu)


def select_candidates(queues: Mapping[str, UserQueue[J]], free_mcpu: int,
                      cores_of: Callable[[J], int]) -> Selection[J]:
    """Shares of `free_mcpu` (the pool's `usable_mcpu`) and the candidates, in order."""
    shares = allocate({user: UserDemand(q.running_mcpu, q.ready_mcpu) for user, q in queues.items()}, free_mcpu)
    selection: Selection[J] = Selection(shares=shares)
    candidates = selection.candidates
    for user in sorted(shares, key=lambda u: (-shares[u], u)):
        queue = queues[user]
        if queue.ready_mcpu <= 0:
            continue
        budget, taken = shares[user], 0
        for job in queue.jobs:
            candidates.append(job)
            taken += 1
            budget -= cores_of(job)
            if taken >= MAX_JOBS_PER_USER or (budget < 0 and taken >= MIN_JOBS_PER_USER):
                break
        if taken:
            selection.taken[user] = taken
    return selection
