"""Attempts: SJ/MJS/MJC fencing, retries of system failures with backoff, n_max_attempts (Hail's mark_job_complete and schedule_job in batch/sql/estimated-current.sql)."""

from __future__ import annotations

import pytest
from lifecycle_world import PRODUCER, SPEC, Builder, World, of_type

from events.catalog import AttemptAssigned, AttemptKillRequested, JobBecameReady, JobCompleted, JobCreating
from events.core.backoff import BASE_DELAY_MS, MAX_DELAY_MS, jitter_fraction, retry_delay_ms
from events.core.lifecycle import CANCELLED, CREATING, ERROR, FAILED, READY, RUNNING, SUCCESS, react
from events.failures import SYSTEM_FAILURES


def ready_job(n_max_attempts: int = 20, always_run: bool = False) -> tuple[Builder, World]:
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: ()}, always_run=(1,) if always_run else (), n_max_attempts=n_max_attempts))
    w.settle()
    assert w.job_state(1) == READY
    return b, w


def unchanged_by(w: World, *events) -> bool:
    before = w.state.snapshot()
    w.append(*events)
    return w.state.snapshot() == before


def test_an_accepted_sj_runs_the_job_and_assigns_the_attempt_with_spec_and_resources():
    b, w = ready_job()
    sj = b.sj(1, "a1", instance="inst-9")
    w.append(sj)
    assert w.job_state(1) == RUNNING
    [assigned] = of_type(w.settle(), AttemptAssigned)
    assert (assigned.instance_name, assigned.attempt_id, assigned.job_id, assigned.user) == ("inst-9", "a1", 1, "alice")
    assert assigned.spec == SPEC and (assigned.cores_mcpu, assigned.memory_bytes) == (1000, 2**30)
    assert (assigned.occurred_at, assigned.causation_id) == (sj.occurred_at, sj.event_id)


@pytest.mark.parametrize("second", ["same_attempt_again", "other_attempt", "older_epoch"])
def test_a_second_sj_for_a_running_job_is_rejected(second):
    b, w = ready_job()
    w.append(b.sj(1, "a1", epoch=5))
    w.settle()
    late = {"same_attempt_again": b.sj(1, "a1", epoch=5), "other_attempt": b.sj(1, "a2", epoch=5),
            "older_epoch": b.sj(1, "a3", epoch=4)}[second]
    assert unchanged_by(w, late)
    assert w.state.jobs[1].attempt.attempt_id == "a1"


def test_a_deposed_schedulers_sj_is_fenced_by_epoch():
    b, w = ready_job()
    w.append(b.sj(1, "a1", epoch=3), b.mjc(1, "a1", "Error", "instance_lost", None))
    w.settle()  # retry: Ready again
    assert w.job_state(1) == READY
    assert unchanged_by(w, b.sj(1, "old-leader", epoch=2))
    w.append(b.sj(1, "new-leader", epoch=3))
    assert w.job_state(1) == RUNNING


def test_a_reused_attempt_id_is_rejected():
    b, w = ready_job()
    w.append(b.sj(1, "a1"), b.mjc(1, "a1", "Error", "worker_crashed", None))
    w.settle()
    assert unchanged_by(w, b.sj(1, "a1"))


def test_sj_for_a_pending_job_is_ignored():
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: (), 2: (1,)}))
    w.settle()
    jobs_before = w.state.snapshot()["jobs"]
    w.append(b.sj(2, "x", epoch=2))
    assert w.state.snapshot()["jobs"] == jobs_before
    assert w.state.max_scheduler_epoch == 2, "even a rejected SJ proves a newer leader exists"


@pytest.mark.parametrize("stale", ["mjs_old_attempt", "mjc_old_attempt", "mjc_unknown_attempt"])
def test_stale_attempt_reports_change_nothing(stale):
    b, w = ready_job()
    w.append(b.sj(1, "a1"), b.mjc(1, "a1", "Error", "instance_lost", None))
    w.settle()
    w.append(b.sj(1, "a2"))
    w.settle()
    event = {"mjs_old_attempt": b.mjs(1, "a1"), "mjc_old_attempt": b.mjc(1, "a1", "Success"),
             "mjc_unknown_attempt": b.mjc(1, "zz", "Failed", "nonzero_exit", 1)}[stale]
    assert unchanged_by(w, event)
    assert w.settle() == []


def test_a_duplicate_completion_changes_nothing():
    b, w = ready_job()
    w.append(b.sj(1, "a1"), b.mjs(1, "a1"), b.mjc(1, "a1", "Success"))
    w.settle()
    assert w.job_state(1) == SUCCESS
    assert unchanged_by(w, b.mjc(1, "a1", "Failed", "nonzero_exit", 1))
    assert unchanged_by(w, *of_type(w.log, JobCompleted))  # the derived event re-delivered
    assert w.settle() == []


def test_a_completion_before_the_start_report_is_accepted():
    b, w = ready_job()
    w.append(b.sj(1, "a1"), b.mjc(1, "a1", "Success"))
    assert [e.state for e in of_type(w.settle(), JobCompleted)] == [SUCCESS]
    assert unchanged_by(w, b.mjs(1, "a1"))


@pytest.mark.parametrize(("outcome", "cause", "exit_code", "final"), [
    ("Success", None, 0, SUCCESS),
    ("Failed", "nonzero_exit", 3, FAILED),
    ("Failed", "out_of_memory", 137, FAILED),
    ("Error", "timed_out", None, ERROR),
    ("Error", "image_not_found", None, ERROR),
    ("Error", "invalid_image_reference", None, ERROR),
    ("Error", "container_spec_invalid", None, ERROR),  # e.g. /bin/bash is not in the image: never retried
    ("Cancelled", "killed", None, CANCELLED),
])
def test_user_failures_and_non_retryable_errors_are_final(outcome, cause, exit_code, final):
    b, w = ready_job()
    mjc = b.mjc(1, "a1", outcome, cause, exit_code)
    w.append(b.sj(1, "a1"), mjc)
    [done] = of_type(w.settle(), JobCompleted)
    assert (done.state, done.exit_code, done.reason, done.attempt_id, done.n_attempts) == (
        final, exit_code, cause, "a1", 1)
    assert (done.occurred_at, done.causation_id) == (mjc.occurred_at, mjc.event_id)
    assert w.job_state(1) == final and w.state.jobs[1].exit_code == exit_code


@pytest.mark.parametrize("cause", sorted(SYSTEM_FAILURES))
def test_a_system_failure_returns_the_job_to_ready_with_backoff(cause):
    b, w = ready_job()
    mjc = b.mjc(1, "a1", "Error", cause, None)
    w.append(b.sj(1, "a1"), mjc)
    [retry] = of_type(w.settle(), JobBecameReady)
    assert (retry.reason, retry.after_attempt_id) == ("retry", "a1")
    assert retry.not_before == mjc.ended_at + retry_delay_ms(1, "a1")
    assert (retry.occurred_at, retry.causation_id) == (mjc.occurred_at, mjc.event_id)
    job = w.state.jobs[1]
    assert (job.state, job.not_before, job.attempt, job.attempt_ids) == (READY, retry.not_before, None, ("a1",))
    w.append(b.sj(1, "a2"), b.mjc(1, "a2", "Success"))
    assert [(e.state, e.n_attempts) for e in of_type(w.settle(), JobCompleted)] == [(SUCCESS, 2)]


def test_n_max_attempts_ends_the_job_in_error():
    b, w = ready_job(n_max_attempts=2)
    for attempt in ("a1", "a2"):
        w.append(b.sj(1, attempt), b.mjc(1, attempt, "Error", "instance_lost", None))
        derived = w.settle()
    [done] = of_type(derived, JobCompleted)
    assert (done.state, done.reason, done.n_attempts) == (ERROR, "too_many_attempts", 2)
    assert w.state.n_failed == 1 and w.state.complete


def test_a_system_failure_of_a_cancelled_job_completes_it_as_cancelled():
    b, w = ready_job()
    w.append(b.sj(1, "a1"))
    w.settle()
    w.append(b.cancel())
    assert len(of_type(w.settle(), AttemptKillRequested)) == 1
    w.append(b.mjc(1, "a1", "Error", "instance_lost", None))
    assert [e.state for e in of_type(w.settle(), JobCompleted)] == [CANCELLED]


def test_placed_and_cancelled_before_the_resolver_reacted_the_worker_gets_the_assignment_then_the_kill():
    """The SJ and the BatchCancelled land in one step: no AttemptAssigned went out yet. A kill alone
    names an attempt the worker never heard of and ends nothing: the job would stay Running."""
    b, w = ready_job()
    w.append(b.cancel())
    [batch_cancelled] = [e for e in react(w.state, PRODUCER) if e.TOPIC == "batch"]
    w.state.clear_dirty()
    w.append(b.sj(1, "a1"), batch_cancelled)
    out = react(w.state, PRODUCER)
    kinds = [(type(e).__name__, getattr(e, "attempt_id", None)) for e in out if e.TOPIC == "assignment"]
    assert kinds == [("AttemptAssigned", "a1"), ("AttemptKillRequested", "a1")]
    w.state.clear_dirty()
    w.append(b.mjs(1, "a1"))
    assert not of_type(w.settle(), AttemptAssigned), "started: never assigned again"


def test_an_always_run_job_keeps_running_when_the_batch_is_cancelled():
    b, w = ready_job(always_run=True)
    w.append(b.sj(1, "a1"), b.mjs(1, "a1"))
    w.settle()
    w.append(b.cancel())
    derived = w.settle()
    assert of_type(derived, AttemptKillRequested) == [] and w.job_state(1) == RUNNING
    w.append(b.mjc(1, "a1", "Error", "instance_lost", None))
    assert [e.reason for e in of_type(w.settle(), JobBecameReady)] == ["retry"]


def test_job_private_attempt_goes_creating_then_running_with_the_same_attempt_id():
    b, w = ready_job()
    creating = JobCreating(event_id="jcr", occurred_at=b.clock.tick(), producer="sched", batch_id=b.batch_id,
                           job_id=1, attempt_id="p1", instance_name="job-private-1", scheduler_epoch=1,
                           user="alice", awaits_verdict=True)
    w.append(creating)
    assert w.job_state(1) == CREATING and of_type(w.settle(), AttemptAssigned) == []
    assert unchanged_by(w, b.sj(1, "other"))
    w.append(b.sj(1, "p1", instance="job-private-1"))
    assert w.job_state(1) == RUNNING
    assert [a.attempt_id for a in of_type(w.settle(), AttemptAssigned)] == ["p1"]


def test_assignment_is_not_repeated_after_the_start_report():
    b, w = ready_job()
    w.append(b.sj(1, "a1"))
    assert len(of_type(w.settle(), AttemptAssigned)) == 1
    w.append(b.mjs(1, "a1"))
    w.state.mark_all_dirty()
    assert w.settle() == []


def test_backoff_is_exponential_capped_and_jittered_by_the_attempt_id():
    assert retry_delay_ms(1, "x") == retry_delay_ms(1, "x")  # deterministic
    for n in (1, 2, 3, 10, 40, 1000):
        ceiling = min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** min(n - 1, 40))
        for attempt in ("a", "b", "c", "zz9"):
            assert ceiling // 2 <= retry_delay_ms(n, attempt) < ceiling or ceiling // 2 == retry_delay_ms(n, attempt)
    assert retry_delay_ms(4, "a") > retry_delay_ms(1, "a")
    assert retry_delay_ms(1000, "a") <= MAX_DELAY_MS
    assert len({round(jitter_fraction(f"a{i}"), 6) for i in range(100)}) > 90  # attempts spread out
