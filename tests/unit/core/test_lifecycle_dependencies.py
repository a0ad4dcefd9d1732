"""Readiness, cancellation, counters and batch completion: Hail's rules (batch/sql/estimated-current.sql)."""

from __future__ import annotations

import pytest
from lifecycle_world import Builder, World, of_type

from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    BatchCancelled,
    BatchCompleted,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobGroupCancelled,
)
from events.core.lifecycle import CANCELLED, PENDING, READY, RUNNING, SUCCESS, react


def started(parents: dict[int, tuple[int, ...]], always_run: tuple[int, ...] = (),
            cancel_after_n_failures: int | None = None) -> tuple[Builder, World]:
    b, w = Builder(), World()
    w.append(b.batch(cancel_after_n_failures), *b.dag(parents, always_run))
    w.settle()
    return b, w


def run(b: Builder, w: World, job_id: int, outcome: str = "Success", cause: str | None = None) -> list:
    """Schedule, start and complete one Ready job; returns what settling derived."""
    attempt = f"a{job_id}-{b.n}"
    w.append(b.sj(job_id, attempt), b.mjs(job_id, attempt),
             b.mjc(job_id, attempt, outcome, cause, 0 if outcome == "Success" else 1))
    return w.settle()


def test_uncommitted_jobs_do_not_count_and_are_not_ready():
    b, w = Builder(), World()
    w.append(b.batch(), b.update(1, 2, 1), b.job(1), b.job(2, [1]))
    assert w.settle() == []
    assert w.state.n_jobs == 0 and w.state.jobs[1].state == PENDING and not w.state.closed
    w.append(b.commit(1, 2, 1))
    derived = w.settle()
    assert [(type(e), e.job_id) for e in derived] == [(JobBecameReady, 1)]
    assert w.state.n_jobs == 2 and w.state.closed


def test_a_child_waits_for_every_parent_then_becomes_ready_at_the_last_parents_time():
    b, w = started({1: (), 2: (), 3: (1, 2)})
    assert w.job_state(3) == PENDING
    run(b, w, 1)
    assert w.job_state(3) == PENDING and w.state.jobs[3].n_pending_parents == 1
    derived = run(b, w, 2)
    ready = of_type(derived, JobBecameReady)
    assert [e.job_id for e in ready] == [3]
    last_parent_done = of_type(w.log, JobCompleted)[-1]
    assert ready[0].occurred_at == last_parent_done.occurred_at
    assert ready[0].causation_id == last_parent_done.event_id
    assert ready[0].reason == "parents_complete"


@pytest.mark.parametrize(("outcome", "cause"), [("Failed", "nonzero_exit"), ("Error", "timed_out"),
                                                ("Failed", "out_of_memory")])
def test_a_parent_that_did_not_succeed_cancels_the_child_once_all_parents_are_complete(outcome, cause):
    b, w = started({1: (), 2: (), 3: (1, 2)})
    derived = run(b, w, 1, outcome, cause)
    assert of_type(derived, JobCancelled) == [], "Hail waits for every parent before deciding"
    derived = run(b, w, 2)
    cancelled = of_type(derived, JobCancelled)
    assert [(e.job_id, e.reason) for e in cancelled] == [(3, "parent_failed")]
    assert w.job_state(3) == CANCELLED


def test_always_run_child_runs_after_a_failed_parent():
    b, w = started({1: (), 2: (1,)}, always_run=(2,))
    derived = run(b, w, 1, "Failed", "nonzero_exit")
    assert [e.job_id for e in of_type(derived, JobBecameReady)] == [2]
    assert w.job_state(2) == READY


def test_cancellation_propagates_down_the_dag():
    b, w = started({1: (), 2: (1,), 3: (2,), 4: (3,), 5: (3,)}, always_run=(5,))
    derived = run(b, w, 1, "Failed", "nonzero_exit")
    assert {e.job_id for e in of_type(derived, JobCancelled)} == {2, 3, 4}
    assert w.job_state(5) == READY  # always_run: its parent was cancelled, it still runs
    assert (w.state.n_failed, w.state.n_cancelled, w.state.n_completed) == (1, 3, 4)


def test_batch_cancel_cancels_waiting_jobs_kills_running_ones_and_spares_always_run():
    b, w = started({1: (), 2: (), 3: (1,), 4: (1,)}, always_run=(4,))
    w.append(b.sj(1, "a1"), b.mjs(1, "a1"))
    w.settle()
    w.append(b.cancel())
    derived = w.settle()
    assert [e.reason for e in of_type(derived, BatchCancelled)] == ["requested"]
    assert {e.job_id: e.reason for e in of_type(derived, JobCancelled)} == {2: "batch_cancelled",
                                                                           3: "batch_cancelled"}
    kills = of_type(derived, AttemptKillRequested)
    assert [(k.job_id, k.attempt_id, k.instance_name) for k in kills] == [(1, "a1", "i-1")]
    assert w.job_state(1) == RUNNING and w.job_state(4) == PENDING
    # the worker kills it and reports Cancelled; the always_run child then runs
    w.append(b.mjc(1, "a1", "Cancelled", "killed", None))
    derived = w.settle()
    assert [(e.job_id, e.state) for e in of_type(derived, JobCompleted)] == [(1, CANCELLED)]
    assert [e.job_id for e in of_type(derived, JobBecameReady)] == [4]
    assert w.state.api_state == "cancelled"


def test_a_cancelled_ready_job_is_never_scheduled():
    b, w = started({1: ()})
    w.append(b.cancel())
    w.append(*of_type(react(w.state, "test"), BatchCancelled))  # not yet the JobCancelled that follows
    assert w.state.cancelled and w.job_state(1) == READY
    before = w.state.snapshot()
    w.append(b.sj(1, "late"))  # the scheduler raced the cancellation; the SJ lost
    assert w.state.snapshot()["jobs"][1] == before["jobs"][1]
    assert of_type(w.settle(), AttemptAssigned) == []
    assert w.job_state(1) == CANCELLED


def test_group_cancel_reaches_its_jobs_and_its_subgroups_only():
    b, w = Builder(), World()
    w.append(b.batch(), b.update(1, 3, 1, n_job_groups=2), b.group(1), b.group(2, parent=1),
             b.job(1, group=0), b.job(2, group=1), b.job(3, group=2), b.commit(1, 3, 1))
    w.settle()
    w.append(b.cancel_group(1))
    derived = w.settle()
    assert [(e.job_group_id, e.reason) for e in of_type(derived, JobGroupCancelled)] == [(1, "requested")]
    assert {e.job_id: e.reason for e in of_type(derived, JobCancelled)} == {2: "group_cancelled",
                                                                           3: "group_cancelled"}
    assert w.job_state(1) == READY and not w.state.cancelled
    assert w.state.groups[1].n_cancelled == 2 and w.state.groups[2].n_cancelled == 1
    assert w.state.groups[2].api_state == "cancelled"


def test_cancel_after_n_failures_on_the_batch():
    b, w = started({1: (), 2: (), 3: (), 4: ()}, cancel_after_n_failures=2)
    run(b, w, 1, "Failed", "nonzero_exit")
    assert not w.state.cancelled
    derived = run(b, w, 2, "Error", "image_not_found")
    assert [e.reason for e in of_type(derived, BatchCancelled)] == ["cancel_after_n_failures"]
    assert {e.job_id for e in of_type(derived, JobCancelled)} == {3, 4}
    assert w.state.complete and w.state.api_state == "failure"


def test_cancel_after_n_failures_on_a_group_leaves_the_rest_of_the_batch():
    b, w = Builder(), World()
    w.append(b.batch(), b.update(1, 3, 1, n_job_groups=1), b.group(1, cancel_after_n_failures=1),
             b.job(1, group=1), b.job(2, group=1), b.job(3, group=0), b.commit(1, 3, 1))
    w.settle()
    derived = run(b, w, 1, "Failed", "nonzero_exit")
    assert [(e.job_group_id, e.reason) for e in of_type(derived, JobGroupCancelled)] == [
        (1, "cancel_after_n_failures")]
    assert w.job_state(2) == CANCELLED and w.job_state(3) == READY


@pytest.mark.parametrize(("outcomes", "api_state"), [
    (["Success", "Success"], "success"),
    (["Success", "Failed"], "failure"),
    (["Error", "Success"], "failure"),
    (["Success", None], "running"),
])
def test_batch_counters_and_state(outcomes, api_state):
    b, w = started({1: (), 2: ()})
    for job_id, outcome in enumerate(outcomes, start=1):
        if outcome:
            run(b, w, job_id, outcome, None if outcome == "Success" else "nonzero_exit")
    s = w.state
    assert s.api_state == api_state
    assert s.n_completed == s.n_succeeded + s.n_failed + s.n_cancelled == sum(o is not None for o in outcomes)
    assert s.n_failed == sum(o in ("Failed", "Error") for o in outcomes)


def test_batch_completes_once_and_a_later_update_reopens_it():
    b, w = started({1: ()})
    derived = run(b, w, 1)
    completed = of_type(derived, BatchCompleted)
    assert [(e.n_jobs, e.n_succeeded) for e in completed] == [(1, 1)]
    assert w.state.complete and w.settle() == []
    # update 2: one child of the finished job 1, one child of the new job 2
    w.append(b.update(2, 2, 2), b.job(2, [1], update_id=2), b.job(3, [2], update_id=2), b.commit(2, 2, 2))
    assert not w.state.complete and w.state.n_jobs == 3 and w.state.api_state == "running"
    assert [e.job_id for e in of_type(w.settle(), JobBecameReady)] == [2]
    run(b, w, 2)
    derived = run(b, w, 3)
    assert [(e.n_jobs, e.n_succeeded) for e in of_type(derived, BatchCompleted)] == [(3, 3)]
    assert len(of_type(w.log, BatchCompleted)) == 2


def test_a_later_updates_child_of_a_failed_job_is_cancelled_at_commit():
    b, w = started({1: ()})
    run(b, w, 1, "Failed", "nonzero_exit")
    w.append(b.update(2, 1, 2), b.job(2, [1], update_id=2), b.commit(2, 1, 2))
    assert [(e.job_id, e.reason) for e in of_type(w.settle(), JobCancelled)] == [(2, "parent_failed")]


def test_an_empty_committed_batch_is_complete():
    b, w = Builder(), World()
    w.append(b.batch(), b.update(1, 0, 1), b.commit(1, 0, 1))
    assert [(e.n_jobs,) for e in of_type(w.settle(), BatchCompleted)] == [(0,)]
    assert w.state.api_state == "success"


def test_jobs_succeed_in_a_chain():
    b, w = started({1: (), 2: (1,), 3: (2,)})
    for j in (1, 2, 3):
        assert w.job_state(j) == READY
        run(b, w, j)
        assert w.job_state(j) == SUCCESS
    assert w.state.complete and w.state.n_succeeded == 3
