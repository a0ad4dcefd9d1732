"""The scheduling projection's fold: queues, fair-share inputs, capacity, and the core's SJ fences."""

from __future__ import annotations

import itertools
from dataclasses import asdict

from projections.scheduling.model import InstanceState, JobPhase
from projections.scheduling.state import SchedulingState
from services.scheduler.plan import plan_cycle
from tests.unit.driver.driver_events import (
    GIB,
    accepted,
    activated,
    attempt_done,
    cancelled,
    completed,
    created,
    creating,
    deactivated,
    deleted,
    heartbeat,
    instance_created,
    ready,
    refused,
    requested,
    scheduled,
)


def fold(*events) -> SchedulingState:  # type: ignore[no-untyped-def]
    state = SchedulingState()
    for e in events:
        state.apply(e)
    return state


def test_ready_jobs_queue_per_user_and_pool_in_batch_then_job_order() -> None:
    state = fold(created(2, batch=5), created(1, batch=5), created(1, batch=3), created(1, user="bob", batch=4),
                 created(9, batch=3, preemptible=False),
                 ready(2, batch=5), ready(1, batch=5), ready(1, batch=3), ready(1, batch=4), ready(9, batch=3))
    assert list(state.ready[("standard", "alice")]) == [(3, 1), (5, 1), (5, 2)]
    assert list(state.ready[("standard", "bob")]) == [(4, 1)]
    assert list(state.ready[("standard-np", "alice")]) == [(3, 9)]
    assert state.user_cores("standard") == {"alice": (0, 3000), "bob": (0, 1000)}


def test_an_accepted_sj_moves_cores_from_ready_to_running_and_takes_instance_capacity() -> None:
    state = fold(activated("w1", cores=4000, memory=16 * GIB, storage=100), created(1, cores=2000), ready(1),
                 scheduled(1, "a1", "w1", cores=2000, memory=4 * GIB, storage=10))
    w1 = state.instances["w1"]
    assert (w1.free_cores_mcpu, w1.free_memory_bytes, w1.free_storage_gib) == (2000, 12 * GIB, 90)
    assert state.user_cores("standard") == {"alice": (2000, 0)}
    assert state.jobs[(1, 1)].phase is JobPhase.RUNNING and w1.idle_since is None


def test_the_verdicts_decide_a_second_sj_for_a_running_job_and_an_older_epoch() -> None:
    first, second, deposed = (scheduled(1, "a1", "w1", epoch=2), scheduled(1, "a2", "w1", epoch=2),
                              scheduled(2, "b1", "w1", epoch=1))
    state = fold(activated("w1"), created(1), created(2), ready(1), ready(2), first, second, deposed)
    # held until judged: job 1 once (its second SJ is not held: one decision at a time), job 2's too
    assert set(state.attempts) == {"a1", "b1"} and state.instances["w1"].free_cores_mcpu == 2000
    for verdict in (accepted(first), refused(second, "not_waiting"), refused(deposed, "deposed")):
        state.apply(verdict)
    assert set(state.attempts) == {"a1"} and not state.attempts["a1"].held
    assert state.instances["w1"].free_cores_mcpu == 3000
    assert state.jobs[(1, 2)].phase is JobPhase.READY and list(state.ready[("standard", "alice")]) == [(1, 2)]
    state.apply(deposed)  # a repeat of a refused decision is not held again
    assert state.jobs[(1, 2)].phase is JobPhase.READY and "b1" not in state.attempts


def test_a_refused_placement_of_a_cancelled_job_frees_its_capacity_at_once() -> None:
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj)
    assert state.instances["w1"].free_cores_mcpu == 3000 and state.attempts["a1"].held
    assert state.apply(refused(sj, "cancelled")) is True  # something to schedule again
    assert state.instances["w1"].free_cores_mcpu == 4000 and state.attempts == {}
    state.apply(cancelled(1))
    assert (1, 1) not in state.jobs and len(state.ready[("standard", "alice")]) == 0


def test_an_accepted_decision_that_was_not_held_is_taken_from_its_verdict() -> None:
    """Two schedulers placed job 1; this view held the first, the core accepted the second."""
    lost, won = scheduled(1, "a1", "w1", epoch=1), scheduled(1, "a2", "w2", epoch=2)
    state = fold(activated("w1"), activated("w2"), created(1), ready(1), lost, won)
    assert set(state.attempts) == {"a1"}
    state.apply(accepted(won))
    assert set(state.attempts) == {"a2"} and state.jobs[(1, 1)].attempt_id == "a2"
    assert (state.instances["w1"].free_cores_mcpu, state.instances["w2"].free_cores_mcpu) == (4000, 3000)
    state.apply(refused(lost, "deposed"))
    assert set(state.attempts) == {"a2"} and state.jobs[(1, 1)].phase is JobPhase.RUNNING
    state.apply(won)  # a re-delivered decision that counted is not held again
    assert state.jobs[(1, 1)].held is None


def test_a_completed_attempt_frees_capacity_once_and_starts_the_idle_clock() -> None:
    state = fold(activated("w1"), created(1), ready(1), scheduled(1, "a1", "w1"),
                 attempt_done(1, "a1", "w1", at=50), attempt_done(1, "a1", "w1", at=60))
    w1 = state.instances["w1"]
    assert w1.free_cores_mcpu == 4000 and w1.idle_since == 50 and not w1.attempts
    assert state.user_cores("standard") == {}
    state.apply(completed(1, attempt="a1"))
    assert (1, 1) not in state.jobs


def test_a_retry_returns_the_job_to_the_queue_with_its_backoff() -> None:
    state = fold(activated("w1"), created(1), ready(1), scheduled(1, "a1", "w1"),
                 attempt_done(1, "a1", "w1", outcome="Error"), ready(1, not_before=9000, at=1, after="a1"))
    job = state.jobs[(1, 1)]
    assert job.phase is JobPhase.READY and job.not_before == 9000 and job.attempt_id is None
    assert list(state.ready[("standard", "alice")]) == [(1, 1)]


def test_cancelling_a_ready_job_leaves_the_queue() -> None:
    state = fold(created(1), ready(1), cancelled(1))
    assert len(state.ready[("standard", "alice")]) == 0 and state.ready[("standard", "alice")].cores_mcpu == 0


def test_instance_lifecycle_requested_active_inactive_deleted() -> None:
    state = fold(requested("w1", at=5))
    assert state.instances["w1"].state is InstanceState.PENDING and state.pending_instances("standard")
    state.apply(activated("w1", at=7))
    state.apply(heartbeat("w1", at=20))
    w1 = state.instances["w1"]
    assert w1.state is InstanceState.ACTIVE and w1.last_sign_of_life() == 20 and w1.idle_since == 7
    state.apply(deactivated("w1", at=30))
    assert w1.state is InstanceState.INACTIVE and w1.deactivated_at == 30 and state.active_instances() == []
    state.apply(deleted("w1"))
    assert "w1" not in state.instances


def test_a_deleted_instance_is_kept_until_its_attempts_are_ended() -> None:
    state = fold(activated("w1"), created(1), ready(1), scheduled(1, "a1", "w1"), deactivated("w1"), deleted("w1"))
    assert state.instances["w1"].deleted and state.instances["w1"].attempts == {"a1"}
    state.apply(attempt_done(1, "a1", "w1", outcome="Error"))
    assert "w1" not in state.instances


def test_a_creating_job_is_placed_on_its_private_instance_with_the_same_attempt() -> None:
    name = "job-1-1-p1"
    state = fold(created(1, cores=8000, machine_type="n1-standard-8"), ready(1),
                 requested(name, pool="job-private", cores=8000, job_private_for="1:1:p1"), creating(1, "p1", name))
    assert state.jobs[(1, 1)].phase is JobPhase.CREATING and state.creating == {(1, 1)}
    assert state.private_job_waiting(state.instances[name]) is state.jobs[(1, 1)]
    state.apply(accepted(creating(1, "p1", name)))
    state.apply(activated(name, pool="job-private", cores=8000))
    boot = scheduled(1, "p1", name, cores=8000)
    state.apply(boot)
    assert state.jobs[(1, 1)].phase is JobPhase.RUNNING and state.creating == set()
    assert state.instances[name].free_cores_mcpu == 0
    state.apply(refused(boot, "deposed"))  # the boot SJ of a deposed leader: still waiting for its instance
    assert state.jobs[(1, 1)].phase is JobPhase.CREATING and state.instances[name].free_cores_mcpu == 8000
    assert state.private_job_waiting(state.instances[name]) is state.jobs[(1, 1)]
    state.apply(boot)  # a repeat of the refused decision is not held
    assert state.jobs[(1, 1)].phase is JobPhase.CREATING
    reboot = scheduled(1, "p1", name, cores=8000, epoch=2)  # the new leader's
    state.apply(reboot)
    state.apply(accepted(reboot))
    assert state.jobs[(1, 1)].phase is JobPhase.RUNNING and state.instances[name].free_cores_mcpu == 0
    assert state.jobs[(1, 1)].held is None and not state.attempts["p1"].held


def test_replaying_the_same_events_gives_the_same_state() -> None:
    events = [activated("w1"), created(1), created(2), ready(1), ready(2), scheduled(1, "a1", "w1"),
              attempt_done(1, "a1", "w1", at=9), completed(1, attempt="a1")]
    one, two = fold(*events), fold(*events)
    assert one.user_cores("standard") == two.user_cores("standard")
    assert asdict(one.instances["w1"]) == asdict(two.instances["w1"])
    assert {k: asdict(j) for k, j in one.jobs.items()} == {k: asdict(j) for k, j in two.jobs.items()}
    assert list(one.ready[("standard", "alice")]) == list(two.ready[("standard", "alice")]) == [(1, 2)]


# --- a job-private instance its job lets go of (cancelled while Creating) ----------------------------

PRIVATE = "job-1-1-p1"


def _interleavings(batch_events: list, instance_events: list):  # type: ignore[no-untyped-def]
    """Every merge of the two topics' events that keeps each topic's own order (what a follower may fold)."""
    n = len(batch_events) + len(instance_events)
    for positions in itertools.combinations(range(n), len(instance_events)):
        merged, b, i = [], iter(batch_events), iter(instance_events)
        for k in range(n):
            merged.append(next(i) if k in positions else next(b))
        yield merged


def _private_job() -> list:  # type: ignore[type-arg]
    return [created(1, cores=8000, machine_type="n1-standard-8"), ready(1)]


def test_a_creating_job_cancelled_releases_its_instance_in_any_topic_order() -> None:
    """The resolver's MJC (Cancelled) for the Creating attempt, then JobCompleted: the instance is released,
    whether it was requested/created/activated before or after, and it is never placed."""
    batch = [*_private_job(), creating(1, "p1", PRIVATE), attempt_done(1, "p1", PRIVATE, outcome="Cancelled"),
             completed(1, attempt="p1")]
    instance = [requested(PRIVATE, pool="job-private", cores=8000, job_private_for="1:1:p1"), instance_created(PRIVATE),
                activated(PRIVATE, pool="job-private", cores=8000)]
    for events in _interleavings(batch, instance):
        state = fold(*events)
        inst = state.instances[PRIVATE]
        assert state.private_instance_released(inst), events
        assert state.private_job_waiting(inst) is None and state.creating == set() and (1, 1) not in state.jobs
        assert (inst.attempts, inst.free_cores_mcpu) == (set(), 8000)
        assert plan_cycle(state, (), 0).creating_placements == []


def test_a_private_instance_is_not_released_while_its_job_may_still_be_waiting() -> None:
    """Folded before JobCreating (the topics are not ordered with each other), or while Creating, or while
    its attempt runs there: not released — the autoscaler must keep it."""
    instance = requested(PRIVATE, pool="job-private", cores=8000, job_private_for="1:1:p1")
    for prefix in ([], _private_job(), [*_private_job(), creating(1, "p1", PRIVATE)],
                   [*_private_job(), creating(1, "p1", PRIVATE), creating(1, "p1", PRIVATE)],  # a duplicate
                   [*_private_job(), creating(1, "p1", PRIVATE), activated(PRIVATE, pool="job-private", cores=8000),
                    scheduled(1, "p1", PRIVATE, cores=8000), creating(1, "p1", PRIVATE)]):
        state = fold(instance, *prefix)
        assert not state.private_instance_released(state.instances[PRIVATE]), prefix


def test_a_job_creating_the_core_refuses_releases_the_instance_it_asked_for() -> None:
    """Cancelled before its JobCreating landed (the core refuses it; JobCancelled follows or came first)."""
    instance = requested(PRIVATE, pool="job-private", cores=8000, job_private_for="1:1:p1")
    for batch in ([*_private_job(), cancelled(1), creating(1, "p1", PRIVATE)],
                  [*_private_job(), creating(1, "p1", PRIVATE), cancelled(1)]):
        for events in _interleavings(batch, [instance]):
            state = fold(*events)
            assert state.private_instance_released(state.instances[PRIVATE]), events


def test_released_claims_go_with_their_instance_and_pool_jobs_make_none() -> None:
    state = fold(*_private_job(), requested(PRIVATE, pool="job-private", cores=8000, job_private_for="1:1:p1"),
                 creating(1, "p1", PRIVATE), attempt_done(1, "p1", PRIVATE, outcome="Cancelled"),
                 completed(1, attempt="p1"),
                 activated("w1"), created(2), ready(2), scheduled(2, "a2", "w1"), attempt_done(2, "a2", "w1"),
                 completed(2, attempt="a2"))
    assert state.released_private == {"1:1:p1"}  # none for the pool job
    state.apply(deactivated(PRIVATE))
    state.apply(deleted(PRIVATE))
    assert PRIVATE not in state.instances and state.released_private == set()


def test_copies_of_old_events_leave_the_view_alone() -> None:
    """The log may hold a derived event twice (a resolver that crashed after appending): a copy of a
    job's first JobBecameReady must not free its running attempt, a copy of a retry must not requeue a
    job that moved on, and a copy of JobCreated must not bring back a finished job. (Each placement is
    followed by the resolver's acceptance, as in the log.)"""
    first = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), first, accepted(first))
    state.apply(ready(1))  # a copy, while a1 runs
    assert state.jobs[(1, 1)].phase is JobPhase.RUNNING and state.instances["w1"].free_cores_mcpu == 3000
    state.apply(attempt_done(1, "a1", "w1", outcome="Error"))
    state.apply(ready(1, at=1, after="a1"))
    second = scheduled(1, "a2", "w1")
    state.apply(second)
    state.apply(accepted(second))
    state.apply(ready(1, at=1, after="a1"))  # a copy of the retry of a1, while a2 runs
    assert state.jobs[(1, 1)].attempt_id == "a2" and state.running_cores["standard"]["alice"] == 1000
    state.apply(completed(1, attempt="a2"))
    state.apply(created(1))
    assert (1, 1) not in state.jobs


# --- copies of old events (re-deliveries) change nothing, as in the core -------------------------------

def test_copies_of_old_readiness_and_creation_do_not_bring_a_job_back() -> None:
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj, accepted(sj))
    state.apply(ready(1))  # its parents completed, again
    assert state.jobs[(1, 1)].phase is JobPhase.RUNNING and len(state.ready[("standard", "alice")]) == 0
    state.apply(attempt_done(1, "a1", "w1", outcome="Error"))
    state.apply(ready(1, not_before=5, after="zz"))  # a retry of an attempt that is not the job's
    assert state.jobs[(1, 1)].phase is JobPhase.FINISHING
    state.apply(completed(1, attempt="zz"))  # a verdict on another attempt
    assert (1, 1) in state.jobs
    state.apply(completed(1, attempt="a1"))
    state.apply(created(1))  # a copy of its JobCreated after it finished
    state.apply(ready(1))
    assert (1, 1) not in state.jobs and len(state.ready[("standard", "alice")]) == 0


def test_a_job_cancelled_while_its_placement_is_held_is_gone_with_its_capacity() -> None:
    sj = scheduled(1, "a1", "w1")
    state = fold(activated("w1"), created(1), ready(1), sj, cancelled(1))  # the core refused the SJ
    assert (1, 1) not in state.jobs and state.instances["w1"].free_cores_mcpu == 4000 and state.attempts == {}
    state.apply(refused(sj, "cancelled"))
    assert (1, 1) not in state.jobs


def test_the_acceptance_of_a_decision_not_held_wins_over_a_held_one_of_the_same_attempt() -> None:
    """Found by the differential test: this view held a deposed SJ, so it skipped the JobCreating the
    core accepted; the boot SJ of that attempt then looked like a fresh placement and was held. The
    JobCreating's acceptance must still be taken (the job is Creating), and the boot's refusal then
    leaves it Creating."""
    deposed, creating_p1 = scheduled(1, "a0", "w1", epoch=0), creating(1, "p1", PRIVATE)
    boot = scheduled(1, "p1", PRIVATE, cores=8000)
    state = fold(activated("w1"), *_private_job(), deposed, creating_p1, refused(deposed, "deposed"), boot)
    assert state.jobs[(1, 1)].held is not None and state.jobs[(1, 1)].held.decision[1] == "p1"
    state.apply(accepted(creating_p1))
    job = state.jobs[(1, 1)]
    assert (job.phase, job.attempt_id, job.held) == (JobPhase.CREATING, "p1", None)
    state.apply(refused(boot, "cancelled"))
    assert (job.phase, job.attempt_id) == (JobPhase.CREATING, "p1") and "p1" not in state.attempts
