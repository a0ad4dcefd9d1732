"""A job cancelled while Creating (its job-private instance still booting) is cancelled outright.

Hail (batch/batch/driver/canceller.py, job.py): the canceller moves a Creating job to Cancelled with an MJC
(no attempt runs, attempt reason `cancelled`) and then deletes its VM; SJ refuses a cancelled job.
Here react derives that MJC, its verdict completes the job, and evolve fences an SJ that would
place the attempt on the booted instance after all — in every order a log may deliver them.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycle_world import PRODUCER, Builder, World, of_type, private_instance

from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    Event,
    JobAttemptAccepted,
    JobAttemptCompleted,
    JobAttemptRefused,
    JobAttemptScheduled,
    JobCancelled,
    JobCompleted,
    JobCreating,
)
from events.core.lifecycle import CANCELLED, CREATING, READY, RUNNING, fold, react
from events.failures import CANCELLED_WHILE_CREATING, INSTANCE_LOST

NAME = private_instance(1, "p1")


def creating_job(always_run: bool = False, extra_jobs: int = 0, cancel_after_n_failures: int | None = None,
                 ) -> tuple[Builder, World]:
    """Job 1 (in job group 1) Creating on its private instance (attempt p1); jobs 2.. plain and Ready."""
    b, w = Builder(), World()
    n = 1 + extra_jobs
    w.append(b.batch(cancel_after_n_failures), b.update(1, n, 1, n_job_groups=1), b.group(1),
             b.job(1, always_run=always_run, group=1), *[b.job(j) for j in range(2, n + 1)], b.commit(1, n, 1))
    w.settle()
    w.append(b.creating(1, "p1"))
    assert w.job_state(1) == CREATING
    assert [(v.attempt_id, v.state) for v in of_type(w.settle(), JobAttemptAccepted)] == [("p1", CREATING)]
    return b, w


def unchanged_by(w: World, *events: Event) -> bool:
    before = w.state.snapshot()
    w.append(*events)
    return w.state.snapshot() == before


def cancel_ending(w: World, b: Builder, how: str) -> None:
    """Cancel job 1's batch, its group, or let cancel_after_n_failures do it (job 2 fails)."""
    if how == "batch":
        w.append(b.cancel())
    elif how == "group":
        w.append(b.cancel_group(1))
    else:
        w.append(b.sj(2, "x1"), b.mjc(2, "x1", "Failed", "nonzero_exit", 1))


@pytest.mark.parametrize(("how", "reason"), [("batch", "batch_cancelled"), ("group", "group_cancelled"),
                                             ("n_failures", "batch_cancelled")])
def test_a_cancelled_creating_job_is_cancelled_without_running(how, reason):
    n_failures = how == "n_failures"
    b, w = creating_job(extra_jobs=1 if n_failures else 0, cancel_after_n_failures=1 if n_failures else None)
    cancel_ending(w, b, how)
    derived = w.settle()

    [mjc] = of_type(derived, JobAttemptCompleted)
    assert (mjc.job_id, mjc.attempt_id, mjc.instance_name) == (1, "p1", NAME)
    assert (mjc.outcome, mjc.failure_cause, mjc.started_at, mjc.exit_code) == (
        CANCELLED, CANCELLED_WHILE_CREATING, None, None)
    done = [e for e in of_type(derived, JobCompleted) if e.job_id == 1]
    assert [(e.state, e.attempt_id, e.reason, e.n_attempts) for e in done] == [(CANCELLED, "p1", reason, 1)]
    assert [e for e in of_type(derived, AttemptAssigned) if e.job_id == 1] == []
    assert [e for e in of_type(derived, AttemptKillRequested) if e.job_id == 1] == [], "nothing runs: nothing to kill"

    job = w.state.jobs[1]
    assert (job.state, job.attempt, job.completion, job.attempt_ids) == (CANCELLED, None, None, ("p1",))
    assert (w.state.groups[1].n_cancelled, w.state.groups[1].n_completed, w.state.groups[1].n_jobs) == (1, 1, 1)
    assert (w.state.n_cancelled, w.state.n_failed, w.state.complete) == (1, 1 if n_failures else 0, True)


def test_the_instance_booting_after_the_cancel_places_nothing():
    """The SJ of the booted instance lands between the cancel and the derived MJC: fenced."""
    b, w = creating_job()
    w.append(b.cancel())
    [batch_cancelled] = react(w.state, PRODUCER)
    w.state.clear_dirty()
    w.append(batch_cancelled)
    [mjc] = react(w.state, PRODUCER)  # in flight...
    w.state.clear_dirty()
    assert isinstance(mjc, JobAttemptCompleted)
    assert unchanged_by(w, b.sj(1, "p1", instance=NAME)), "a cancelled Creating job must not be placed"
    assert w.job_state(1) == CREATING
    # the fenced SJ derives its refusal, nothing else: no assignment, no kill
    [refused] = react(w.state, PRODUCER)
    w.state.clear_dirty()
    assert isinstance(refused, JobAttemptRefused) and (refused.attempt_id, refused.reason) == ("p1", "cancelled")
    w.append(mjc)  # ...and lands
    derived = w.settle()
    assert [e.state for e in of_type(derived, JobCompleted)] == [CANCELLED]
    assert of_type(derived, AttemptAssigned) == []


def test_late_events_for_the_ended_attempt_change_nothing():
    b, w = creating_job()
    creating_event = w.log[-1]
    w.append(b.cancel())
    w.settle()
    assert w.job_state(1) == CANCELLED
    late = [b.sj(1, "p1", instance=NAME), b.sj(1, "p2"), creating_event, b.creating(1, "p3"),
            b.mjs(1, "p1", instance=NAME), b.mjc(1, "p1", "Error", INSTANCE_LOST, None, instance=NAME),
            *[e for e in w.log if isinstance(e, JobAttemptCompleted | JobCompleted)]]
    for event in late:
        assert unchanged_by(w, event), event
    # the new decisions among them are refused, and that is all they derive (the boot SJ of p1 and the
    # JobCreating's copy are repeats of decisions judged already)
    assert [(e.attempt_id, e.reason) for e in w.settle()] == [("p2", "cancelled"), ("p3", "cancelled")]


def test_a_cancel_before_job_creating_refuses_the_creating_attempt():
    """The scheduler asked for the instance after the job was cancelled: JobCreating is fenced and the
    job is cancelled as any Ready job (JobCancelled, no attempt at all)."""
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: ()}))
    w.settle()
    w.append(b.cancel())
    [batch_cancelled] = react(w.state, PRODUCER)
    w.state.clear_dirty()
    w.append(batch_cancelled, b.creating(1, "p1"))  # before the derived JobCancelled lands
    assert w.job_state(1) == READY and w.state.jobs[1].attempt_ids == ()
    derived = w.settle()
    assert [e.job_id for e in of_type(derived, JobCancelled)] == [1]
    assert of_type(derived, JobAttemptCompleted) == [] and w.job_state(1) == CANCELLED
    assert unchanged_by(w, b.creating(1, "p1"), b.sj(1, "p1", instance=NAME))


def test_a_stale_copy_of_the_creating_decision_does_not_fence_its_own_boot():
    """A deposed scheduler's JobCreating delivered again after a newer leader placed another job: it
    changes nothing, and the job still boots on its instance (once, the copy made the attempt refused
    and the job stayed Creating for ever)."""
    b, w = creating_job(extra_jobs=1)
    creating_event = w.log[-1]
    w.append(b.sj(2, "x1", epoch=2))  # a newer leader
    assert unchanged_by(w, creating_event)
    w.append(b.sj(1, "p1", epoch=2, instance=NAME))
    assert w.job_state(1) == RUNNING
    assert [a.attempt_id for a in of_type(w.settle(), AttemptAssigned) if a.job_id == 1] == ["p1"]


def test_a_deposed_leaders_boot_sj_is_refused_without_refusing_the_attempt():
    b, w = creating_job(extra_jobs=1)
    w.append(b.sj(2, "x1", epoch=2))
    assert unchanged_by(w, b.sj(1, "p1", epoch=1, instance=NAME))  # the old leader saw the instance boot
    w.append(b.sj(1, "p1", epoch=2, instance=NAME))  # so did the new one
    assert w.job_state(1) == RUNNING


def test_booted_before_the_cancel_it_runs_and_is_killed_as_any_running_job():
    b, w = creating_job()
    w.append(b.sj(1, "p1", instance=NAME))
    assert [a.instance_name for a in of_type(w.settle(), AttemptAssigned)] == [NAME]
    w.append(b.cancel())
    derived = w.settle()
    assert [(k.instance_name, k.attempt_id) for k in of_type(derived, AttemptKillRequested)] == [(NAME, "p1")]
    assert of_type(derived, JobAttemptCompleted) == [] and w.job_state(1) == RUNNING
    w.append(b.mjc(1, "p1", "Cancelled", "killed", None, instance=NAME))
    assert [(e.state, e.reason) for e in of_type(w.settle(), JobCompleted)] == [(CANCELLED, "killed")]


def test_an_always_run_creating_job_keeps_its_instance_when_the_batch_is_cancelled():
    b, w = creating_job(always_run=True)
    w.append(b.cancel())
    assert of_type(w.settle(), JobAttemptCompleted) == []
    w.append(b.sj(1, "p1", instance=NAME))
    assert w.job_state(1) == RUNNING
    assert [a.attempt_id for a in of_type(w.settle(), AttemptAssigned)] == ["p1"]


def test_the_activation_timeout_racing_the_cancel_completes_the_job_once():
    """Health ends the attempt (instance_lost) before the canceller's MJC lands: one of them wins."""
    b, w = creating_job()
    w.append(b.cancel())
    [bc] = [e for e in react(w.state, PRODUCER) if e.TOPIC == "batch"]
    w.state.clear_dirty()
    w.append(bc)
    [ours] = react(w.state, PRODUCER)
    w.state.clear_dirty()
    w.append(b.mjc(1, "p1", "Error", INSTANCE_LOST, None, instance=NAME))
    assert unchanged_by(w, ours)
    assert [(e.state, e.reason) for e in of_type(w.settle(), JobCompleted)] == [(CANCELLED, INSTANCE_LOST)]


def test_redelivering_every_event_of_the_cancellation_changes_nothing():
    b, w = creating_job()
    w.append(b.cancel())
    w.settle()
    final = w.state.snapshot()
    for event in list(w.log):
        assert unchanged_by(w, event), event
    assert w.settle() == []
    assert fold(w.log).snapshot() == final
    assert react(fold(w.log), PRODUCER, everything=True) == []


# --- every order a log can deliver --------------------------------------------------------------

def _deliveries():  # type: ignore[no-untyped-def]
    """(order of the three producers' events, which of them are delivered twice)."""
    return st.tuples(st.permutations(["creating", "cancel", "boot"]),
                     st.lists(st.sampled_from(["creating", "cancel", "boot"]), max_size=3),
                     st.lists(st.sampled_from(["react", "land", "deliver"]), min_size=3, max_size=12))


@settings(max_examples=200, deadline=None)
@given(_deliveries())
def test_any_order_of_creating_cancel_and_boot_never_runs_a_cancelled_job(delivery):
    """The scheduler's JobCreating, the user's cancel and the booted instance's SJ may reach the log in
    any order, duplicated, interleaved with the resolver's derived events landing late."""
    order, repeats, steps = delivery
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: ()}))
    w.settle()
    made = {"creating": b.creating(1, "p1"), "cancel": b.cancel(), "boot": b.sj(1, "p1", instance=NAME)}
    queue = [made[k] for k in order] + [made[k] for k in repeats]
    in_flight: list[Event] = []
    derived: list[Event] = []
    placed_while_cancelled = placed = was_creating = False

    def deliver(event: Event) -> None:
        nonlocal placed_while_cancelled, placed, was_creating
        job = w.state.jobs[1]
        was_cancelled, before = w.state.is_job_cancelled(job), (job.state, job.attempt_ids)
        w.append(event)
        if isinstance(event, JobAttemptScheduled | JobCreating) and (job.state, job.attempt_ids) != before:
            placed_while_cancelled |= was_cancelled
            placed |= job.state == RUNNING
            was_creating |= job.state == CREATING

    def react_once() -> None:
        for e in react(w.state, PRODUCER):
            derived.append(e)
            if e.TOPIC == "batch" and e.event_id not in {x.event_id for x in in_flight}:
                in_flight.append(e)
        w.state.clear_dirty()

    for step in itertools.chain(steps, itertools.repeat("deliver")):
        if not queue:
            break
        if step == "react":
            react_once()
        elif step == "land" and in_flight:
            deliver(in_flight.pop(0))
        elif step == "deliver":
            deliver(queue.pop(0))
    for _ in range(20):  # settle: react and land until quiet
        react_once()
        if not in_flight:
            break
        while in_flight:
            deliver(in_flight.pop(0))

    assert not placed_while_cancelled
    job = w.state.jobs[1]
    assigned = [e for e in derived if isinstance(e, AttemptAssigned)]
    if placed:  # the SJ landed before the cancel took effect: the running path applies, a kill
        # repeats have one id; [] if it was cancelled before react saw it placed (then the kill brings it)
        assert job.state == RUNNING and sorted({a.attempt_id for a in assigned}) in ([], ["p1"])
        assert any(isinstance(e, AttemptKillRequested) for e in derived)
    else:
        assert job.state == CANCELLED and assigned == []
        assert w.state.complete and w.state.n_cancelled == 1
        assert not any(isinstance(e, AttemptKillRequested) for e in derived)
        ended = [e for e in derived if isinstance(e, JobAttemptCompleted)]
        if was_creating:  # cancelled while Creating: the canceller's MJC ended the attempt
            assert [(e.attempt_id, e.failure_cause) for e in ended] == [("p1", CANCELLED_WHILE_CREATING)]
            assert job.attempt_ids == ("p1",)
        else:  # JobCreating came after the cancel: refused, the job never had an attempt
            assert ended == [] and job.attempt_ids == ()
    rebuilt = fold(w.log)
    assert rebuilt.snapshot() == w.state.snapshot()
    assert [e for e in react(rebuilt, PRODUCER, everything=True) if e.TOPIC == "batch"] == []
