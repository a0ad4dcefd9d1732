"""Hail's look-ahead window (pure): which ready jobs the autoscaler buys instances for.

Hail's autoscaler (`Pool.regions_to_ready_cores_mcpu_from_estimated_job_queue`) does not size a
pool for its whole queue, only for the jobs the scheduler would reach before a new worker could
boot (`job_queue_scheduling_window_secs`, 150 s):
1. the cores the pool could add in that window: worker cores × max_new_per_loop × the number of
   autoscaler loops in the window;
2. those cores are shared between the users with ready work by the fair share (water-filling
   over running and ready cores, `events.core.fairshare.allocate`);
3. a scheduling pass (about one a second) takes max(round(300 × share / total), 20) jobs of each
   user, so the window holds that many jobs × the window's seconds, from the head of each user's
   queue;
4. the demand is the cores of those jobs.
So a user with a 1M-job queue does not make the pool grow to its maximum at once, and a user with
a few jobs is never left out (at least 20 jobs a pass).

Unlike Hail, counting may stop early (`enough_mcpu`): once the demand exceeds what the pool could
add this loop anyway, more jobs cannot change the decision, and a huge queue costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

from events.core.autoscale import PoolConfig
from events.core.fairshare import UserDemand, allocate

JOBS_PER_PASS = 300  # Hail: jobs one scheduling pass starts, split by share
MIN_JOBS_PER_USER_PASS = 20  # Hail: no user gets fewer per pass
PASS_MS = 1_000  # Hail's estimate: one scheduling pass a second


@dataclass(frozen=True, slots=True)
class UserQueue:
    """One user's place in a pool: running and ready cores, and the cores of its ready jobs in queue
    order (consumed lazily: only the window's head is read)."""

    running_mcpu: int
    ready_mcpu: int
    ready_cores: Iterable[int]


@dataclass(frozen=True, slots=True)
class UserWindow:
    user: str
    share_mcpu: int  # fair share of the cores the pool could add in the window
    jobs_per_pass: int
    window_jobs: int  # how many of its ready jobs the window holds
    n_jobs: int  # how many were counted (fewer when its queue is shorter, or counting stopped)
    demand_mcpu: int


@dataclass(frozen=True, slots=True)
class Lookahead:
    pool: str
    window_ms: int
    future_mcpu: int  # cores the pool could add within the window
    ready_mcpu: int  # every ready job of the pool
    demand_mcpu: int  # the ready jobs inside the window
    truncated: bool  # counting stopped at `enough_mcpu`: the demand is at least this
    users: tuple[UserWindow, ...]


def future_capacity_mcpu(pool: PoolConfig, loop_period_ms: int) -> int:
    """Cores the pool could add within its scheduling window (Hail: 2.5 min of autoscaler loops)."""
    loops = pool.scheduling_window_ms / max(1, loop_period_ms)
    return pool.worker_mcpu * int(pool.max_new_per_loop * loops)


def lookahead(pool: PoolConfig, users: Mapping[str, UserQueue], loop_period_ms: int,
              enough_mcpu: int | None = None) -> Lookahead:
    future = future_capacity_mcpu(pool, loop_period_ms)
    ready_total = sum(q.ready_mcpu for q in users.values())
    waiting = {u: q for u, q in users.items() if q.ready_mcpu > 0}
    shares = allocate({u: UserDemand(q.running_mcpu, q.ready_mcpu) for u, q in waiting.items()}, future)
    total = sum(shares.values())
    if total == 0:
        return Lookahead(pool.name, pool.scheduling_window_ms, future, ready_total, 0, False, ())
    passes = pool.scheduling_window_ms // PASS_MS
    demand, truncated = 0, False
    windows = []
    # largest share first, as the scheduler serves them; then by name, so the result is deterministic
    for user in sorted(waiting, key=lambda u: (-shares[u], u)):
        per_pass = max(int(JOBS_PER_PASS * shares[user] / total + 0.5), MIN_JOBS_PER_USER_PASS)
        window_jobs = per_pass * passes
        n = mcpu = 0
        if not truncated:
            for cores in islice(waiting[user].ready_cores, window_jobs):
                n += 1
                mcpu += cores
                if enough_mcpu is not None and demand + mcpu > enough_mcpu:
                    truncated = True
                    break
        demand += mcpu
        windows.append(UserWindow(user, shares[user], per_pass, window_jobs, n, mcpu))
    return Lookahead(pool.name, pool.scheduling_window_ms, future, ready_total, demand, truncated, tuple(windows))


def enough_demand_mcpu(pool: PoolConfig, free_mcpu: int, pending_mcpu: int) -> int:
    """Demand beyond which the decision cannot change: the pool adds at most max_new_per_loop workers."""
    return free_mcpu + pending_mcpu + pool.max_new_per_loop * pool.worker_mcpu
