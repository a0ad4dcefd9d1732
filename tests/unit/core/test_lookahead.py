"""Hail's look-ahead window: the autoscaler buys instances for the jobs the scheduler reaches in 150 s."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from events.core.autoscale import PoolConfig, PoolSnapshot, decide_from_snapshots
from events.core.lookahead import (
    MIN_JOBS_PER_USER_PASS,
    UserQueue,
    enough_demand_mcpu,
    future_capacity_mcpu,
    lookahead,
)

POOL = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=16, max_new_per_loop=10)
LOOP_MS = 15_000  # Hail's autoscaler_loop_period_secs


def queue(n_jobs: int, cores_mcpu: int = 1000, running: int = 0) -> UserQueue:
    return UserQueue(running, n_jobs * cores_mcpu, (cores_mcpu for _ in range(n_jobs)))


def test_future_capacity_is_hails_two_and_a_half_minutes_of_loops():
    # 10 new per loop, 4 loops a minute, 2.5 minutes: 100 workers of 16 cores
    assert future_capacity_mcpu(POOL, LOOP_MS) == 100 * 16_000


def test_one_user_with_a_huge_queue_looks_ahead_300_jobs_a_pass_for_150_passes():
    window = lookahead(POOL, {"alice": queue(1_000_000)}, LOOP_MS)
    (alice,) = window.users
    assert (alice.jobs_per_pass, alice.window_jobs, alice.n_jobs) == (300, 45_000, 45_000)
    assert window.demand_mcpu == 45_000_000 and window.ready_mcpu == 1_000_000_000


def test_users_share_the_pass_by_fair_share_and_nobody_gets_fewer_than_20():
    users = {"alice": queue(100_000), "bob": queue(100_000), "carol": queue(3)}
    window = lookahead(POOL, users, LOOP_MS)
    by_user = {u.user: u for u in window.users}
    assert by_user["alice"].jobs_per_pass == by_user["bob"].jobs_per_pass
    assert by_user["carol"].jobs_per_pass >= MIN_JOBS_PER_USER_PASS and by_user["carol"].n_jobs == 3
    # shares: carol's 3 cores, the rest split equally
    assert by_user["alice"].share_mcpu == by_user["bob"].share_mcpu == (window.future_mcpu - 3_000) // 2


def test_a_short_queue_is_counted_whole():
    window = lookahead(POOL, {"alice": queue(7, 2_000)}, LOOP_MS)
    assert (window.demand_mcpu, window.truncated) == (14_000, False)


def test_no_growth_possible_means_no_demand():
    window = lookahead(replace(POOL, max_new_per_loop=0), {"alice": queue(10)}, LOOP_MS)
    assert window.demand_mcpu == 0 and window.users == ()


def test_counting_stops_once_the_decision_cannot_change():
    window = lookahead(POOL, {"alice": queue(1_000_000)}, LOOP_MS, enough_mcpu=170_000)
    assert window.truncated and 170_000 < window.demand_mcpu <= 171_000
    assert window.users[0].n_jobs == 171


queues = st.dictionaries(
    st.sampled_from(["alice", "bob", "carol", "dave"]),
    st.tuples(st.lists(st.sampled_from([250, 500, 1000, 2000, 8000]), max_size=400), st.integers(0, 64_000)),
    max_size=4)


def _users(raw):  # type: ignore[no-untyped-def]
    return {u: UserQueue(running, sum(cores), iter(cores)) for u, (cores, running) in raw.items()}


@settings(max_examples=300, deadline=None)
@given(queues, st.integers(0, 10), st.sampled_from([1, 2, 16]), st.sampled_from([1_000, 15_000, 60_000]),
       st.integers(0, 8), st.integers(0, 8), st.integers(0, 40_000))
def test_the_window_is_a_head_of_each_queue_and_stopping_early_never_changes_the_decision(
        raw, per_loop, cores, loop_ms, live, pending, free):
    pool = replace(POOL, worker_cores=cores, max_new_per_loop=per_loop, max_instances=50)
    full = lookahead(pool, _users(raw), loop_ms)
    assert full.demand_mcpu <= full.ready_mcpu and not full.truncated
    for u in full.users:
        cores_list = raw[u.user][0]
        assert u.jobs_per_pass >= MIN_JOBS_PER_USER_PASS
        assert u.n_jobs == min(len(cores_list), u.window_jobs)
        assert u.demand_mcpu == sum(cores_list[:u.n_jobs])  # the head of the queue, in order
    assert full.demand_mcpu == sum(u.demand_mcpu for u in full.users)

    snapshot = PoolSnapshot(live=live + pending, pending=pending, free_mcpu=free, idle=())
    enough = enough_demand_mcpu(pool, free, pending * pool.worker_mcpu)
    quick = lookahead(pool, _users(raw), loop_ms, enough_mcpu=enough)
    assert quick.demand_mcpu <= full.demand_mcpu
    assert quick.truncated == (full.demand_mcpu > enough)
    with_full = decide_from_snapshots([pool], {"standard": full.demand_mcpu}, {"standard": snapshot}, 0)
    with_quick = decide_from_snapshots([pool], {"standard": quick.demand_mcpu}, {"standard": snapshot}, 0)
    assert (with_quick.requests, with_quick.standing) == (with_full.requests, with_full.standing)
