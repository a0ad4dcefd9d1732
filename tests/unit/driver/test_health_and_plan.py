"""Pure parts of the driver: which instances are lost, and what one scheduling pass places where."""

from __future__ import annotations

import dataclasses

from events.catalog import InstanceDeactivated, JobAttemptCompleted, JobBecameReady
from events.core.autoscale import PoolConfig
from events.core.explain import Reason
from events.core.fairshare import UserDemand, allocate
from projections.scheduling.model import Demand
from projections.scheduling.state import SchedulingState
from services.health.detector import HealthSettings, lost_instance_events
from services.scheduler.plan import Reservation, plan_cycle, private_instance_name
from tests.unit.driver.driver_events import (
    accepted,
    activated,
    created,
    creating,
    deactivated,
    heartbeat,
    ready,
    requested,
    scheduled,
)

SETTINGS = HealthSettings(heartbeat_timeout_ms=1000, activation_timeout_ms=5000, drain_grace_ms=500)


def fold(*events) -> SchedulingState:  # type: ignore[no-untyped-def]
    state = SchedulingState()
    for e in events:
        state.apply(e)
    return state


# ---- health ------------------------------------------------------------------------------------

def test_a_silent_instance_is_deactivated_and_each_of_its_attempts_ends_as_instance_lost() -> None:
    sj1, sj2 = scheduled(1, "a1", "w1"), scheduled(2, "a2", "w1")
    state = fold(activated("w1", at=0), activated("w2", at=0), created(1), created(2), ready(1), ready(2),
                 sj1, sj2, heartbeat("w1", 100), heartbeat("w2", 1500))
    # not judged yet: nothing to end (the MJC would come before the verdict that accepts the attempt)
    assert [type(e) for e in lost_instance_events(state, 1101, SETTINGS)] == [InstanceDeactivated]
    state.apply(accepted(sj1))
    state.apply(accepted(sj2))
    assert lost_instance_events(state, 1100, SETTINGS) == []
    events = lost_instance_events(state, 1101, SETTINGS)
    [deact] = [e for e in events if isinstance(e, InstanceDeactivated)]
    ended = [e for e in events if isinstance(e, JobAttemptCompleted)]
    assert (deact.instance_name, deact.reason) == ("w1", "not_responding")
    assert sorted((e.job_id, e.attempt_id) for e in ended) == [(1, "a1"), (2, "a2")]
    assert {(e.outcome, e.failure_cause, e.producer) for e in ended} == {("Error", "instance_lost", "health")}
    assert [e.event_id for e in lost_instance_events(state, 1101, SETTINGS)] == [e.event_id for e in events]


def test_a_refold_that_meets_an_instances_heartbeat_before_the_instance_still_sees_it_alive() -> None:
    """Heartbeats have their own (compacted) topic: a rebuilt view may fold the newest heartbeat of
    an instance before the instance topic's events. Forgetting it would deactivate a live instance."""
    state = fold(heartbeat("w1", 9_000), requested("w1", at=0), activated("w1", at=10),
                 heartbeat("w2", 9_500), activated("w2", at=20))
    assert lost_instance_events(state, 9_900, SETTINGS) == []
    assert state.early_heartbeats == {}
    assert [e.instance_name for e in lost_instance_events(state, 10_001, SETTINGS)] == ["w1"]


def test_early_heartbeats_of_instances_long_gone_do_not_pile_up() -> None:
    state = SchedulingState()
    for n in range(3000):  # deleted instances whose last heartbeat is folded after their end
        state.apply(heartbeat(f"gone{n}", n))
    state.apply(heartbeat("live", 3_600_000))
    for n in range(2000):
        state.apply(heartbeat(f"new{n}", 3_600_000 + n))
    assert all(not name.startswith("gone") for name in state.early_heartbeats)
    assert "live" in state.early_heartbeats


def test_an_instance_that_never_activates_times_out_and_ends_the_creating_job() -> None:
    name = private_instance_name((1, 1), "p1")
    state = fold(created(1, cores=8000, machine_type="n1-standard-8"), ready(1),
                 requested(name, pool="job-private", at=0, job_private_for="1:1:p1"), creating(1, "p1", name),
                 accepted(creating(1, "p1", name)))
    assert lost_instance_events(state, 5000, SETTINGS) == []
    events = lost_instance_events(state, 5001, SETTINGS)
    assert [(type(e).__name__, getattr(e, "reason", None) or getattr(e, "attempt_id", None)) for e in events] == [
        ("InstanceDeactivated", "activation_timeout"), ("JobAttemptCompleted", "p1")]


def test_attempts_left_on_a_deactivated_instance_end_after_the_drain_grace() -> None:
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj, accepted(sj), deactivated("w1", at=100))
    assert lost_instance_events(state, 599, SETTINGS) == []
    [ended] = lost_instance_events(state, 600, SETTINGS)
    assert isinstance(ended, JobAttemptCompleted) and ended.attempt_id == "a1"


def test_attempts_on_a_preempted_instance_end_at_once_as_preempted() -> None:
    """The provider's word (the autoscaler deactivates with reason `preempted`): nothing to drain, and
    the cause is what retry policies count as a preemption."""
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj, accepted(sj), deactivated("w1", at=100, reason="preempted"))
    [ended] = lost_instance_events(state, 100, SETTINGS)
    assert isinstance(ended, JobAttemptCompleted)
    assert (ended.attempt_id, ended.outcome, ended.failure_cause) == ("a1", "Error", "preempted")
    assert ended.error == "instance w1 was preempted"


def test_a_retry_that_must_run_non_preemptible_waits_in_the_np_pool_with_its_new_memory() -> None:
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj, accepted(sj))
    retry = JobBecameReady(event_id="r", occurred_at=5, producer="t", batch_id=1, job_id=1, after_attempt_id="a1",
                           reason="retry", retry_rule="max_preemptions", retry_cause="preempted",
                           memory_bytes=8 * 2**30, preemptible=False)
    state.apply(retry)
    job = state.jobs[(1, 1)]
    assert (job.pool, job.preemptible, job.demand.memory_bytes) == ("standard-np", False, 8 * 2**30)
    assert [key for key in state.ready[("standard-np", "alice")]] == [(1, 1)]
    assert not state.ready.get(("standard", "alice"))
    plan = plan_cycle(state, [], 10)  # w1 is preemptible: the job waits for a non-preemptible instance
    assert plan.assignments == []
    state.apply(dataclasses.replace(activated("np1", pool="standard-np", at=6), preemptible=False))
    [placed] = plan_cycle(state, [], 10).assignments
    assert (placed.instance_name, placed.memory_bytes) == ("np1", 8 * 2**30)


# ---- one scheduling pass -------------------------------------------------------------------------

def test_reservations_keep_a_pass_from_overcommitting_an_instance() -> None:
    state = fold(activated("w1", cores=2000), *(created(j) for j in range(1, 5)), *(ready(j) for j in range(1, 5)))
    first = plan_cycle(state, [], now_ms=0)
    assert [(a.job_id, a.instance_name) for a in first.assignments] == [(1, "w1"), (2, "w1")]
    reserved = [Reservation((1, a.job_id), "alice", "standard", a.instance_name, Demand(1000, a.memory_bytes, 0), 0)
                for a in first.assignments]
    second = plan_cycle(state, reserved, now_ms=0)
    assert second.assignments == []  # w1 is full until the SJs come back
    assert {e.job_id for e in second.explanations} == {3, 4}


def test_shares_follow_water_filling_and_the_bigger_share_goes_first() -> None:
    state = fold(activated("w1", cores=8000, memory=64 * 1024**3),
                 *(created(j, user="alice") for j in range(1, 11)), *(ready(j) for j in range(1, 11)),
                 *(created(j, user="bob", batch=2) for j in range(1, 3)), *(ready(j, batch=2) for j in range(1, 3)))
    plan = plan_cycle(state, [], now_ms=0)
    expected = allocate({"alice": UserDemand(0, 10_000), "bob": UserDemand(0, 2000)}, 8000)
    assert plan.shares["standard"] == expected == {"alice": 6000, "bob": 2000}
    placed = [a.user for a in plan.assignments]
    assert placed.count("alice") == 6 and placed.count("bob") == 2 and placed[0] == "alice"


def test_jobs_in_backoff_wait() -> None:
    state = fold(activated("w1"), created(1), ready(1, not_before=500, at=1))
    assert plan_cycle(state, [], now_ms=499).assignments == []
    assert [a.job_id for a in plan_cycle(state, [], now_ms=500).assignments] == [1]


def test_a_machine_type_job_asks_for_its_own_instance_and_is_placed_when_it_is_active() -> None:
    state = fold(created(1, cores=8000, machine_type="n1-standard-8"), ready(1))
    plan = plan_cycle(state, [], now_ms=0)
    assert [(r.job_id, r.machine_type) for r in plan.job_private_requests] == [(1, "n1-standard-8")]
    name = private_instance_name((1, 1), "p1")
    for e in (requested(name, pool="job-private", cores=8000, job_private_for="1:1:p1"), creating(1, "p1", name),
              activated(name, pool="job-private", cores=8000)):
        state.apply(e)
    plan = plan_cycle(state, [], now_ms=0)
    assert plan.job_private_requests == [] and [(c.job.key, c.instance.name) for c in plan.creating_placements] == [
        ((1, 1), name)]


def test_a_job_no_worker_of_its_pool_can_hold_is_explained_as_such() -> None:
    """Before: the scheduler said no_capacity ("the autoscaler adds instances"), which it never would."""
    pool = PoolConfig(name="standard", worker_type="standard", preemptible=True, worker_cores=2)
    state = fold(activated("w1", cores=2000), created(1, cores=4000), ready(1), created(2, cores=2000), ready(2))
    plan = plan_cycle(state, [], now_ms=0, pools=(pool,))
    [explanation] = plan.explanations
    assert (explanation.job_id, explanation.reason) == (1, Reason.NO_POOL_FITS)
    assert "no pool can ever run this job" in explanation.message and "largest pool is standard" in explanation.message
    assert [a.job_id for a in plan.assignments] == [2]
    # without the pools (or with one whose workers are big enough) it waits for capacity as before
    assert plan_cycle(state, [], now_ms=0).explanations[0].reason == Reason.NO_CAPACITY
