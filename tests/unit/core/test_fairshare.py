"""Fair share: Hail's water-filling, and the dominant-resource variant."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.core.fairshare import UserDemand, allocate, allocate_drf

GIB = 1024**3


@pytest.mark.parametrize(
    ("users", "free", "expected"),
    [
        # equal split among users with the same running cores
        ({"a": (0, 10_000), "b": (0, 10_000)}, 8_000, {"a": 4_000, "b": 4_000}),
        # the user running least is served first until it catches up, then equal split
        ({"a": (0, 10_000), "b": (4_000, 10_000)}, 8_000, {"a": 6_000, "b": 2_000}),
        # a small demand is met in full and the rest goes to the others
        (
            {"a": (0, 10_000), "b": (4_000, 10_000), "c": (0, 1_000)},
            10_000,
            {"a": 6_500, "b": 2_500, "c": 1_000},
        ),
        # more free cores than demand: everyone gets their ready cores
        ({"a": (2_000, 3_000), "b": (0, 500)}, 100_000, {"a": 3_000, "b": 500}),
        # no ready demand, no share; no free cores, no share
        ({"a": (5_000, 0), "b": (0, 4_000)}, 1_000, {"a": 0, "b": 1_000}),
        ({"a": (0, 4_000)}, 0, {"a": 0}),
        # a user far ahead gets nothing until the others catch up
        ({"a": (100_000, 50_000), "b": (0, 50_000)}, 20_000, {"a": 0, "b": 20_000}),
        # an unequal split gives the spare mCPU to users in name order
        ({"c": (0, 9_000), "a": (0, 9_000), "b": (0, 9_000)}, 1_000, {"a": 334, "b": 333, "c": 333}),
    ],
)
def test_water_filling(users, free, expected):
    demands = {user: UserDemand(running, ready) for user, (running, ready) in users.items()}
    assert allocate(demands, free) == expected


demand = st.builds(UserDemand, st.integers(0, 200_000), st.integers(0, 200_000))
user_demands = st.dictionaries(st.sampled_from([f"u{i}" for i in range(12)]), demand, max_size=12)


@settings(max_examples=300, deadline=None)
@given(user_demands, st.integers(0, 500_000))
def test_shares_never_exceed_demand_or_free_and_use_all_they_can(users, free):
    shares = allocate(users, free)
    assert set(shares) == set(users)
    assert all(0 <= shares[u] <= d.ready_mcpu for u, d in users.items())
    total_ready = sum(d.ready_mcpu for d in users.values())
    assert sum(shares.values()) == min(free, total_ready)


@settings(max_examples=300, deadline=None)
@given(user_demands, st.integers(0, 500_000))
def test_water_level_is_fair(users, free):
    """A user short of its demand ends at least as high (running + share) as anyone who got cores."""
    shares = allocate(users, free)
    levels = {u: d.running_mcpu + shares[u] for u, d in users.items()}
    for u, d in users.items():
        if shares[u] < d.ready_mcpu:
            for v in users:
                if shares[v] > 0:
                    assert levels[u] >= levels[v] - 1


@settings(max_examples=100, deadline=None)
@given(user_demands, st.integers(0, 500_000))
def test_allocation_does_not_depend_on_input_order(users, free):
    reversed_users = dict(reversed(list(users.items())))
    assert allocate(users, free) == allocate(reversed_users, free)


def test_drf_equalises_dominant_shares():
    users = {
        "cpu_heavy": UserDemand(0, 16_000, 0, 16 * GIB),  # 1 core : 1 GiB
        "memory_heavy": UserDemand(0, 4_000, 0, 64 * GIB),  # 1 core : 16 GiB
    }
    shares = allocate_drf(users, 16_000, 64 * GIB, 16_000, 64 * GIB)
    # both end at a dominant share of 0.8: cpu_heavy holds 80% of cpu, memory_heavy 80% of memory
    assert shares["cpu_heavy"].mcpu == pytest.approx(12_800, abs=2)
    assert shares["memory_heavy"].memory_bytes == pytest.approx(0.8 * 64 * GIB, rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.builds(
            UserDemand,
            st.integers(0, 50_000),
            st.integers(0, 50_000),
            st.integers(0, 200 * GIB),
            st.integers(0, 200 * GIB),
        ),
    ),
    st.integers(0, 64_000),
    st.integers(0, 256 * GIB),
)
def test_drf_never_exceeds_free_resources_or_demand(users, free_mcpu, free_memory):
    shares = allocate_drf(users, free_mcpu, free_memory, 64_000, 256 * GIB)
    assert sum(s.mcpu for s in shares.values()) <= free_mcpu
    assert sum(s.memory_bytes for s in shares.values()) <= free_memory
    assert all(
        shares[u].mcpu <= d.ready_mcpu and shares[u].memory_bytes <= d.ready_memory_bytes
        for u, d in users.items()
    )
