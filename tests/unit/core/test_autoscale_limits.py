"""Standing workers, max_live_instances vs max_instances, and the limits every decision keeps (Hail's
`Pool.create_instances` semantics), with hypothesis over random fleets."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from events.core.autoscale import (
    LIMIT_MAX_INSTANCES,
    LIMIT_MAX_LIVE,
    LIMIT_PER_LOOP,
    InstanceStatus,
    PoolConfig,
    capacity_limit_reached,
    decide,
)

NOW = 1_700_000_000_000
POOL = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=16, min_instances=0,
                  max_instances=20, max_new_per_loop=10, idle_time_ms=30_000)


def inst(name: str, *, state: str = "active", cores: int = 16, running: int = 0, idle_for_ms: int | None = None,
         standing: bool = False, free: int | None = None) -> InstanceStatus:
    active = state == "active"
    return InstanceStatus(name=name, pool="standard", pending=state == "pending",
                          free_mcpu=(cores * 1000 if free is None else free) if active else 0,
                          running_attempts=running,
                          idle_since_ms=NOW - idle_for_ms if idle_for_ms is not None and active and not running else None,
                          cores_mcpu=cores * 1000, standing=standing, inactive=state == "inactive")


def test_standing_workers_have_the_standing_size_and_fill_the_minimum():
    pool = replace(POOL, min_instances=2, standing_worker_cores=4)
    decision = decide([pool], {}, [], NOW)
    assert decision.standing == {"standard": 2} and decision.requests == {}
    assert (pool.standing_mcpu, pool.standing_machine_type) == (4_000, "n1-standard-4")


def test_demand_workers_count_toward_the_minimum():
    # Hail counts every instance: 3 workers for demand already make a minimum of 2
    pool = replace(POOL, min_instances=2, standing_worker_cores=4)
    decision = decide([pool], {"standard": 48_000}, [], NOW)
    assert (decision.requests, decision.standing) == ({"standard": 3}, {})


def test_an_idle_worker_bigger_than_a_standing_one_is_replaced_by_a_standing_worker():
    pool = replace(POOL, min_instances=1, standing_worker_cores=4)
    decision = decide([pool], {}, [inst("big", idle_for_ms=60_000)], NOW)
    assert decision.deletions == ["big"]
    assert decision.standing == {"standard": 1}


def test_the_minimum_keeps_idle_standing_workers():
    pool = replace(POOL, min_instances=1, standing_worker_cores=4, standing_worker_idle_time_ms=60_000)
    small = inst("s", cores=4, idle_for_ms=600_000, standing=True)
    assert decide([pool], {}, [small], NOW).deletions == []
    # beyond the minimum a standing worker goes after its own (longer) idle time
    other = inst("s2", cores=4, idle_for_ms=40_000, standing=True)
    assert decide([pool], {}, [small, other], NOW).deletions == ["s"]


def test_standing_workers_keep_their_own_idle_time():
    pool = replace(POOL, min_instances=0, standing_worker_cores=4, standing_worker_idle_time_ms=300_000)
    standing = inst("s", cores=4, idle_for_ms=100_000, standing=True)
    worker = inst("w", idle_for_ms=100_000)
    assert decide([pool], {}, [standing, worker], NOW).deletions == ["w"]


def test_max_live_instances_bounds_pending_and_active_instances():
    pool = replace(POOL, max_live_instances=5, max_instances=20)
    fleet = [inst(f"a{i}", running=4, free=0) for i in range(3)] + [inst("p", state="pending")]
    decision = decide([pool], {"standard": 1_000_000}, fleet, NOW)
    assert decision.requests == {"standard": 1}
    assert decision.verdicts["standard"].limited_by == LIMIT_MAX_LIVE


def test_max_instances_counts_deactivated_instances_not_deleted_yet():
    pool = replace(POOL, max_live_instances=10, max_instances=6)
    fleet = [inst(f"a{i}", running=4, free=0) for i in range(3)] + [inst(f"x{i}", state="inactive") for i in range(2)]
    decision = decide([pool], {"standard": 1_000_000}, fleet, NOW)
    assert decision.requests == {"standard": 1}
    assert decision.verdicts["standard"].limited_by == LIMIT_MAX_INSTANCES
    assert capacity_limit_reached(pool, live=4, inactive=2) == LIMIT_MAX_INSTANCES
    assert capacity_limit_reached(replace(pool, max_live_instances=4), live=4, inactive=1) == LIMIT_MAX_LIVE
    assert capacity_limit_reached(pool, live=3, inactive=2) is None


def test_the_per_loop_limit_is_named_when_it_binds():
    decision = decide([POOL], {"standard": 1_000_000}, [], NOW)
    assert decision.requests == {"standard": 10}
    assert decision.verdicts["standard"].limited_by == LIMIT_PER_LOOP


def test_booting_standing_workers_count_with_their_own_size():
    pool = replace(POOL, standing_worker_cores=4)
    # 20 cores ready; a 4-core standing worker boots: 16 more -> one 16-core worker
    decision = decide([pool], {"standard": 20_000}, [inst("s", state="pending", cores=4, standing=True)], NOW)
    assert decision.requests == {"standard": 1}
    assert decision.verdicts["standard"].pending_mcpu == 4_000


def test_configuration_problems_are_hails_checks():
    assert POOL.problems() == []
    assert replace(POOL, min_instances=3, max_live_instances=2).problems()
    assert replace(POOL, max_live_instances=30).problems()  # above max_instances
    assert replace(POOL, standing_worker_cores=32).problems()
    assert replace(POOL, scheduling_window_ms=10).problems()


pools = st.builds(
    lambda cores, standing, mn, live_extra, total_extra, per_loop, idle, s_idle: PoolConfig(
        name="standard", worker_type="standard", preemptible=True, worker_cores=cores,
        standing_worker_cores=standing if standing is None else min(standing, cores), min_instances=mn,
        max_live_instances=mn + live_extra, max_instances=mn + live_extra + total_extra, max_new_per_loop=per_loop,
        idle_time_ms=idle, standing_worker_idle_time_ms=s_idle),
    st.sampled_from([1, 2, 4, 16]), st.none() | st.integers(1, 16), st.integers(0, 4), st.integers(0, 6),
    st.integers(0, 6), st.integers(0, 5), st.integers(0, 100_000), st.integers(0, 200_000))

fleets = st.lists(
    st.builds(lambda i, state, cores, running, idle, standing: inst(
        f"i{i}", state=state, cores=cores, running=running if state == "active" else 0,
        idle_for_ms=idle if state == "active" and not running else None, standing=standing,
        free=max(0, cores * 1000 - running * 1000) if state == "active" else None),
        st.integers(0, 10**6), st.sampled_from(["pending", "active", "active", "inactive"]),
        st.sampled_from([1, 2, 4, 16]), st.integers(0, 3), st.integers(0, 300_000), st.booleans()),
    max_size=14, unique_by=lambda i: i.name)


@settings(max_examples=400, deadline=None)
@given(pools, fleets, st.integers(0, 400_000))
@example(  # a bigger idle worker replaced by a standing one at a live limit of 1 (found by hypothesis)
    PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=1, min_instances=1,
               max_instances=2, max_live_instances=1, max_new_per_loop=1, idle_time_ms=0,
               standing_worker_idle_time_ms=0),
    [InstanceStatus(name="i0", pool="standard", pending=False, free_mcpu=2000, running_attempts=0,
                    idle_since_ms=NOW, cores_mcpu=2000)],
    0)
def test_every_decision_keeps_the_pool_within_its_limits(pool, fleet, demand):
    decision = decide([pool], {"standard": demand}, fleet, NOW)
    verdict = decision.verdicts["standard"]
    live = sum(1 for i in fleet if not i.inactive)
    inactive = sum(1 for i in fleet if i.inactive)
    new = decision.requests.get("standard", 0) + decision.standing.get("standard", 0)
    by_name = {i.name: i for i in fleet}

    assert new <= pool.max_new_per_loop
    # an instance deleted this loop is no longer live (Hail marks it inactive at once), so a standing
    # worker may take the place of a bigger idle one within the same live limit
    assert live - len(decision.deletions) + new <= max(pool.live_limit, live)
    assert live + inactive + new <= max(pool.max_instances, live + inactive)
    if decision.requests.get("standard"):
        assert decision.deletions == [], "never delete while growing for demand"
    for name in decision.deletions:
        i = by_name[name]
        assert not i.pending and not i.inactive and i.running_attempts == 0 and i.idle_since_ms is not None
        own_idle = pool.standing_worker_idle_time_ms if i.standing else pool.idle_time_ms
        assert NOW - i.idle_since_ms >= own_idle
    # the minimum: only instances bigger than a standing worker may go below it, and standing
    # workers make up for them unless a limit stops it (then the verdict names the limit)
    after = live - len(decision.deletions) + new
    fit_deleted = [n for n in decision.deletions if by_name[n].cores_mcpu <= pool.standing_mcpu]
    if fit_deleted:
        assert live - len(decision.deletions) >= pool.min_instances
    if after < pool.min_instances:
        assert verdict.limited_by is not None
    # demand: what the verdict says it needed, granted unless a named limit cut it
    if verdict.requested < verdict.for_demand:
        assert verdict.limited_by is not None
    assert (verdict.requested, verdict.standing_requested, verdict.deleted) == (
        decision.requests.get("standard", 0), decision.standing.get("standard", 0), len(decision.deletions))
    assert decide([pool], {"standard": demand}, list(reversed(fleet)), NOW).requests == decision.requests
