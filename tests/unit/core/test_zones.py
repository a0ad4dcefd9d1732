"""Zones weighted by recent success (Hail's ZoneSuccessRate), drawn deterministically from a seed."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.core.zones import (
    ZONE_WINDOW,
    ZoneOutcome,
    ZoneWeight,
    ZoneWindow,
    choose_zone,
    unit_interval,
    zone_weights,
)

ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]


def outcomes(zone: str, pattern: str, prefix: str = "") -> list[ZoneOutcome]:
    """'++-' -> success, success, failure, keyed by distinct instance names."""
    return [ZoneOutcome(zone, f"{prefix}{zone}-{i}", c == "+") for i, c in enumerate(pattern)]


def test_an_unknown_zone_has_hails_prior_of_one_half():
    (w,) = zone_weights(["z"], [])
    assert (w.successes, w.attempts, w.success_rate, w.weight) == (0, 0, 0.5, 0.5)


def test_success_rate_is_hails_over_the_last_ten_creations():
    history = outcomes("a", "-" * 10 + "+" * 10)  # the ten failures have left the window
    (a,) = zone_weights(["a"], history)
    assert (a.successes, a.attempts, a.success_rate) == (10, 10, 11 / 12)
    (b,) = zone_weights(["b"], outcomes("b", "+--"))
    assert b.success_rate == pytest.approx(2 / 5)


def test_a_redelivered_outcome_counts_once():
    once = outcomes("a", "-")
    assert zone_weights(["a"], once + once + once)[0].attempts == 1


def test_capacity_weight_is_capped_at_ten_as_in_hail():
    (w,) = zone_weights(["a"], [], capacity={"a": 500.0})
    assert w.weight == 10 * 0.5


def test_the_same_seed_always_gives_the_same_zone():
    weights = zone_weights(ZONES, outcomes(ZONES[0], "--") + outcomes(ZONES[1], "++"))
    assert len({choose_zone(weights, "squall-standard-abc12345") for _ in range(5)}) == 1
    assert 0 <= unit_interval("x") < 1 and unit_interval("x") != unit_interval("y")


def test_a_failing_zone_is_chosen_less_but_never_never():
    history = outcomes("bad", "-" * 10) + outcomes("good", "+" * 10)
    weights = zone_weights(["bad", "good"], history)
    picks = Counter(choose_zone(weights, f"instance-{i}") for i in range(6000))
    bad_share = (1 / 12) / (1 / 12 + 11 / 12)
    assert picks["bad"] / 6000 == pytest.approx(bad_share, abs=0.015)
    assert picks["bad"] > 0


def test_no_zone_to_choose_from_is_an_error():
    with pytest.raises(ValueError):
        choose_zone([], "seed")


histories = st.lists(st.tuples(st.sampled_from(ZONES), st.integers(0, 40), st.booleans()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(histories, st.text(min_size=1, max_size=20))
def test_weights_follow_the_window_and_the_draw_is_one_of_the_zones(raw, seed):
    history = [ZoneOutcome(z, f"i{k}", ok) for z, k, ok in raw]
    weights = zone_weights(ZONES, history)
    for w in weights:
        assert 0 <= w.successes <= w.attempts <= ZONE_WINDOW
        assert 0 < w.weight < 1
        assert w.success_rate == (w.successes + 1) / (w.attempts + 2)
    assert choose_zone(weights, seed) in ZONES
    # incremental and whole-history folds agree (the autoscaler folds as the log arrives)
    window = ZoneWindow()
    for o in history:
        window.push(o)
    assert window.weights(ZONES) == weights


@settings(max_examples=200, deadline=None)
@given(histories, st.sampled_from(ZONES))
def test_one_more_failure_never_raises_a_zones_chance(raw, zone):
    history = [ZoneOutcome(z, f"i{k}", ok) for z, k, ok in raw]
    before = {w.zone: w.weight for w in zone_weights(ZONES, history)}
    after = {w.zone: w.weight for w in zone_weights(ZONES, [*history, ZoneOutcome(zone, "fresh", False)])}
    assert after[zone] / sum(after.values()) <= before[zone] / sum(before.values()) + 1e-12


def test_zone_weight_is_a_value():
    assert ZoneWeight("a", 1, 2, 1.0) == ZoneWeight("a", 1, 2, 1.0)
