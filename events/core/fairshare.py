"""Fair share: how many more cores each user may start this cycle.

`allocate` is Hail's water-filling (`PoolScheduler._compute_fair_share`): a mark rises from 0;
a user takes part once the mark passes their running cores and stops at running + ready. Users
running the least are served first, then free cores are split equally. Integer mCPU throughout;
the last few mCPU of an unequal split go to users in name order, so the answer is deterministic
and never exceeds the free cores.

`allocate_drf` generalises the mark to dominant-resource fairness over cpu and memory: the mark
is a user's dominant share (the larger of their cpu and memory fractions of the pool), so a user
asking for memory-heavy jobs is charged for the memory they hold.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UserDemand:
    """A user's running and ready (schedulable, not yet running) resources in one pool."""

    running_mcpu: int
    ready_mcpu: int
    running_memory_bytes: int = 0
    ready_memory_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ResourceShare:
    mcpu: int
    memory_bytes: int


def allocate(users: Mapping[str, UserDemand], free_mcpu: int) -> dict[str, int]:
    """Water-filling: each user's extra mCPU this cycle; at most their ready demand, summing to <= free."""
    result = {user: 0 for user in users}
    budget = max(0, free_mcpu)
    # (threshold, user) events: a user joins at its running cores, leaves at running + ready.
    joining = sorted((d.running_mcpu, user) for user, d in users.items() if d.ready_mcpu > 0)
    leaving: list[tuple[int, str]] = []  # kept sorted by (total, user)
    allocating: dict[str, int] = {}  # user -> running; insertion order irrelevant, sorted when split
    mark = joining[0][0] if joining else 0
    next_join = 0
    while budget > 0 and (next_join < len(joining) or allocating):
        while next_join < len(joining) and joining[next_join][0] <= mark:
            running, user = joining[next_join]
            allocating[user] = running
            bisect.insort(leaving, (running + users[user].ready_mcpu, user))
            next_join += 1
        while leaving and leaving[0][0] <= mark:
            total, user = leaving.pop(0)
            del allocating[user]
            result[user] = total - users[user].running_mcpu
        if not allocating:
            if next_join >= len(joining):
                break
            mark = joining[next_join][0]
            continue
        next_mark = leaving[0][0]
        if next_join < len(joining):
            next_mark = min(next_mark, joining[next_join][0])
        cost = len(allocating) * (next_mark - mark)
        if cost > budget:
            each, extra = divmod(budget, len(allocating))
            for rank, user in enumerate(sorted(allocating)):
                result[user] = mark + each + (1 if rank < extra else 0) - allocating[user]
            return result
        budget -= cost
        mark = next_mark
    for user, running in allocating.items():
        result[user] = mark - running
    return result


def allocate_drf(
    users: Mapping[str, UserDemand],
    free_mcpu: int,
    free_memory_bytes: int,
    capacity_mcpu: int,
    capacity_memory_bytes: int,
) -> dict[str, ResourceShare]:
    """Dominant-resource water-filling: equalise users' dominant shares of the pool's capacity.

    A user's allocation grows along the direction of its ready demand (ready cpu : ready memory),
    until either free resource runs out or the user's ready demand is met.
    """
    if capacity_mcpu <= 0 or capacity_memory_bytes <= 0:
        return {user: ResourceShare(0, 0) for user in users}

    def dominant(mcpu: float, memory: float) -> float:
        return max(mcpu / capacity_mcpu, memory / capacity_memory_bytes)

    starts = {u: dominant(d.running_mcpu, d.running_memory_bytes) for u, d in users.items()}
    spans = {u: dominant(d.ready_mcpu, d.ready_memory_bytes) for u, d in users.items()}

    def fraction(user: str, level: float) -> float:
        """The part of the user's ready demand granted when the dominant-share mark is at `level`."""
        span = spans[user]
        if span <= 0 or level <= starts[user]:
            return 0.0
        return min(1.0, (level - starts[user]) / span)

    def used(level: float) -> tuple[float, float]:
        mcpu = sum(fraction(u, level) * d.ready_mcpu for u, d in users.items())
        memory = sum(fraction(u, level) * d.ready_memory_bytes for u, d in users.items())
        return mcpu, memory

    def fits(level: float) -> bool:
        mcpu, memory = used(level)
        return mcpu <= free_mcpu and memory <= free_memory_bytes

    top = max((starts[u] + spans[u] for u in users), default=0.0)
    if fits(top):
        level = top
    else:
        low, high = 0.0, top
        for _ in range(64):  # bisection on a monotone function; 64 halvings exhaust a double
            middle = (low + high) / 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        level = low
    return {
        user: ResourceShare(
            mcpu=int(fraction(user, level) * d.ready_mcpu),
            memory_bytes=int(fraction(user, level) * d.ready_memory_bytes),
        )
        for user, d in users.items()
    }
