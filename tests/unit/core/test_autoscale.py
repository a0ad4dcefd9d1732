"""The pure autoscaling decision: requests for unmet demand within limits, idle deletions."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from events.core.autoscale import DEFAULT_POOLS, InstanceStatus, PoolConfig, decide

NOW = 1_700_000_000_000
POOL = PoolConfig(
    name="standard", worker_type="standard", preemptible=True, max_instances=20, max_new_per_loop=10
)


def active(name: str, free: int = 16_000, running: int = 0, idle_since: int | None = None) -> InstanceStatus:
    return InstanceStatus(
        name=name,
        pool="standard",
        pending=False,
        free_mcpu=free,
        running_attempts=running,
        idle_since_ms=idle_since,
    )


def booting(name: str) -> InstanceStatus:
    return InstanceStatus(
        name=name, pool="standard", pending=True, free_mcpu=0, running_attempts=0, idle_since_ms=None
    )


def test_default_pools_cover_the_three_worker_types_preemptible_or_not():
    assert sorted(p.name for p in DEFAULT_POOLS) == [
        "highcpu",
        "highcpu-np",
        "highmem",
        "highmem-np",
        "standard",
        "standard-np",
    ]
    highmem = next(p for p in DEFAULT_POOLS if p.name == "highmem-np")
    assert (highmem.machine_type, highmem.preemptible, highmem.worker_mcpu) == (
        "n1-highmem-16",
        False,
        16_000,
    )
    assert highmem.worker_memory_bytes == 16 * 6656 * 1024**2


def test_requests_cover_demand_beyond_free_and_booting_capacity():
    # 40 cores ready; 8 free on an active instance, 16 on the way -> 16 more -> one instance
    decision = decide([POOL], {"standard": 40_000}, [active("a", 8_000, running=1), booting("b")], NOW)
    assert decision.requests == {"standard": 1}
    assert decision.deletions == []


def test_requests_are_capped_per_loop_and_by_max_instances():
    assert decide([POOL], {"standard": 1_000_000}, [], NOW).requests == {"standard": 10}
    full = [active(f"i{n}", 0, running=4) for n in range(15)]
    assert decide([POOL], {"standard": 1_000_000}, full, NOW).requests == {"standard": 5}
    at_max = [active(f"i{n}", 0, running=4) for n in range(20)]
    assert decide([POOL], {"standard": 1_000_000}, at_max, NOW).requests == {}


def test_pools_are_topped_up_to_their_minimum_with_standing_workers():
    pool = replace(POOL, min_instances=3)
    decision = decide([pool], {}, [active("a", running=1)], NOW)
    assert (decision.requests, decision.standing) == ({}, {"standard": 2})
    assert decision.verdicts["standard"].standing_requested == 2


def test_idle_instances_are_deleted_after_the_idle_time_oldest_first():
    instances = [
        active("busy", 12_000, running=1),
        active("fresh", idle_since=NOW - 10_000),
        active("stale", idle_since=NOW - 60_000),
        active("staler", idle_since=NOW - 90_000),
        booting("boot"),
    ]
    assert decide([POOL], {}, instances, NOW).deletions == ["staler", "stale"]


def test_min_instances_are_kept_even_when_idle():
    pool = replace(POOL, min_instances=2)
    instances = [
        active("a", idle_since=NOW - 90_000),
        active("b", idle_since=NOW - 80_000),
        active("c", idle_since=NOW - 70_000),
    ]
    assert decide([pool], {}, instances, NOW).deletions == ["a"]


def test_no_deletions_in_a_pool_that_is_growing():
    instances = [active("idle", 16_000, idle_since=NOW - 90_000)]
    decision = decide([POOL], {"standard": 64_000}, instances, NOW)
    assert decision.requests == {"standard": 3}
    assert decision.deletions == []


statuses = st.lists(
    st.builds(
        InstanceStatus,
        name=st.text("abcdefgh", min_size=1, max_size=5),
        pool=st.just("standard"),
        pending=st.booleans(),
        free_mcpu=st.integers(0, 16_000),
        running_attempts=st.integers(0, 3),
        idle_since_ms=st.one_of(st.none(), st.integers(NOW - 200_000, NOW)),
    ),
    max_size=30,
    unique_by=lambda i: i.name,
)


@settings(max_examples=200, deadline=None)
@given(statuses, st.integers(0, 2_000_000), st.integers(0, 5), st.integers(0, 40))
def test_never_deletes_running_instances_nor_breaks_limits(instances, ready, min_instances, max_instances):
    pool = replace(POOL, min_instances=min_instances, max_instances=max_instances)
    decision = decide([pool], {"standard": ready}, instances, NOW)
    by_name = {i.name: i for i in instances}
    assert all(
        by_name[name].running_attempts == 0 and not by_name[name].pending for name in decision.deletions
    )
    requested = decision.requests.get("standard", 0) + decision.standing.get("standard", 0)
    assert 0 <= requested <= pool.max_new_per_loop
    assert len(instances) + requested <= max(max_instances, len(instances))
    assert len(instances) - len(decision.deletions) >= min(min_instances, len(instances))
