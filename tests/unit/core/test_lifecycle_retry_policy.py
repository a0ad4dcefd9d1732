"""Retry policies (events/core/retries.py): out-of-memory retries with more memory, transient exit codes,
and the fallback to non-preemptible instances after real preemptions. Each decision is the retry's
JobBecameReady, with the rule and what the next attempts ask for."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycle_runs import POLICY, RETRY_ACTIONS, RetryRun
from lifecycle_world import PRODUCER, SPEC, Builder, World, of_type

from events.catalog import (
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobBecameReady,
    JobCompleted,
    RetryPolicy,
)
from events.core.backoff import retry_delay_ms
from events.core.lifecycle import ERROR, FAILED, READY, SUCCESS, fold, react
from events.core.retries import MAX_PREEMPTIONS, OOM_MEMORY_MULTIPLIER, RETRY_EXIT_CODES, SYSTEM_FAILURE
from events.failures import SYSTEM_FAILURES

GIB = 2**30
OOM = RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=3 * GIB, retry_exit_codes=())


def job_with(policy: RetryPolicy | None, n_max_attempts: int = 20) -> tuple[Builder, World]:
    b, w = Builder(), World()
    w.append(b.batch(), b.update(1, 1, 1), b.job(1, n_max_attempts=n_max_attempts, retry_policy=policy),
             b.commit(1, 1, 1))
    w.settle()
    assert w.job_state(1) == READY
    return b, w


def run(b: Builder, w: World, attempt: str, outcome: str, cause: str | None, exit_code: int | None,
        memory: int = GIB) -> list:
    """Place the job with `memory`, end the attempt as told, settle: the derived events."""
    w.append(b.sj(1, attempt, memory_bytes=memory))
    w.settle()
    w.append(b.mjc(1, attempt, outcome, cause, exit_code))
    return w.settle()


def test_an_out_of_memory_kill_is_retried_at_once_with_memory_times_the_multiplier_up_to_the_cap():
    b, w = job_with(OOM)
    [retry] = of_type(run(b, w, "a1", FAILED, "out_of_memory", 137, memory=GIB), JobBecameReady)
    assert (retry.retry_rule, retry.retry_cause, retry.memory_bytes) == (OOM_MEMORY_MULTIPLIER, "out_of_memory", 2 * GIB)
    assert retry.not_before is None and retry.preemptible is None
    assert w.job_state(1) == READY and w.state.jobs[1].overrides.memory_bytes == 2 * GIB
    [capped] = of_type(run(b, w, "a2", FAILED, "out_of_memory", 137, memory=2 * GIB), JobBecameReady)
    assert capped.memory_bytes == 3 * GIB  # 4 GiB asked, the cap holds it at 3
    [final] = of_type(run(b, w, "a3", FAILED, "out_of_memory", 137, memory=3 * GIB), JobCompleted)
    assert (final.state, final.reason, final.n_attempts) == (FAILED, "out_of_memory", 3)


def test_without_a_policy_out_of_memory_stays_the_users_failure():
    b, w = job_with(None)
    [final] = of_type(run(b, w, "a1", FAILED, "out_of_memory", 137), JobCompleted)
    assert (final.state, final.reason) == (FAILED, "out_of_memory")


def test_a_job_private_attempt_asks_for_the_retried_memory():
    b, w = job_with(dataclasses.replace(OOM, oom_max_memory_bytes=None))
    run(b, w, "a1", FAILED, "out_of_memory", 137, memory=SPEC.resources.memory_bytes)
    w.append(b.creating(1, "a2"))
    [verdict] = w.state.verdicts_due.values()
    assert verdict.memory_bytes == 2 * SPEC.resources.memory_bytes


@pytest.mark.parametrize(("exit_code", "retried"), [(3, True), (4, True), (1, False)])
def test_listed_exit_codes_are_retried_with_backoff_others_are_final(exit_code, retried):
    b, w = job_with(RetryPolicy(retry_exit_codes=(3, 4)))
    events = run(b, w, "a1", FAILED, "nonzero_exit", exit_code)
    if not retried:
        [final] = of_type(events, JobCompleted)
        assert (final.state, final.exit_code) == (FAILED, exit_code)
        return
    [retry] = of_type(events, JobBecameReady)
    mjc = next(e for e in w.log if e.TOPIC == "batch" and type(e).__name__ == "JobAttemptCompleted")
    assert retry.retry_rule == RETRY_EXIT_CODES and retry.memory_bytes is None
    assert retry.not_before == mjc.ended_at + retry_delay_ms(1, "a1")
    [done] = of_type(run(b, w, "a2", SUCCESS, None, 0), JobCompleted)
    assert (done.state, done.n_attempts) == (SUCCESS, 2)


def test_a_listed_exit_code_out_of_attempts_ends_failed_not_error():
    b, w = job_with(RetryPolicy(retry_exit_codes=(3,)), n_max_attempts=2)
    run(b, w, "a1", FAILED, "nonzero_exit", 3)
    [final] = of_type(run(b, w, "a2", FAILED, "nonzero_exit", 3), JobCompleted)
    assert (final.state, final.exit_code, final.reason, final.n_attempts) == (FAILED, 3, "nonzero_exit", 2)


def test_after_max_preemptions_the_job_runs_non_preemptible_for_good():
    b, w = job_with(RetryPolicy(max_preemptions=2, retry_exit_codes=()))
    [first] = of_type(run(b, w, "a1", ERROR, "preempted", None), JobBecameReady)
    assert (first.retry_rule, first.preemptible) == (SYSTEM_FAILURE, None)
    [second] = of_type(run(b, w, "a2", ERROR, "preempted", None), JobBecameReady)
    assert (second.retry_rule, second.retry_cause, second.preemptible) == (MAX_PREEMPTIONS, "preempted", False)
    [later] = of_type(run(b, w, "a3", ERROR, "instance_lost", None), JobBecameReady)
    assert (later.retry_rule, later.preemptible) == (SYSTEM_FAILURE, False)  # stays non-preemptible
    assert w.state.jobs[1].overrides.snapshot() == (None, True, 2)


def test_an_instance_that_went_silent_is_not_a_preemption():
    b, w = job_with(RetryPolicy(max_preemptions=1, retry_exit_codes=()))
    [retry] = of_type(run(b, w, "a1", ERROR, "instance_lost", None), JobBecameReady)
    assert (retry.retry_rule, retry.preemptible) == (SYSTEM_FAILURE, None)


def test_a_cancelled_job_is_not_retried_by_its_policy():
    b, w = job_with(OOM)
    w.append(b.sj(1, "a1"))
    w.settle()
    w.append(b.cancel())
    w.settle()
    w.append(b.mjc(1, "a1", FAILED, "out_of_memory", 137))
    [final] = of_type(w.settle(), JobCompleted)
    assert final.state == FAILED


def test_a_rebuild_from_the_log_keeps_what_the_retries_changed_and_derives_nothing():
    b, w = job_with(dataclasses.replace(OOM, max_preemptions=1))
    run(b, w, "a1", FAILED, "out_of_memory", 137)
    run(b, w, "a2", ERROR, "preempted", None, memory=2 * GIB)
    rebuilt = fold(w.log)
    assert rebuilt.snapshot() == w.state.snapshot()
    assert rebuilt.jobs[1].overrides.snapshot() == (2 * GIB, True, 1)
    assert react(rebuilt, "test", everything=True) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_runs_of_failing_attempts_decide_every_retry_by_the_policy(data):
    """Runs whose attempts mostly fail (lifecycle_runs.RetryRun: even jobs have POLICY), in any order a
    log delivers, re-deliveries and stale reports included: every retry follows its rule, and a rebuild
    from the log reaches the same state and derives nothing."""
    run = RetryRun(data)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(RETRY_ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()

    log = run.w.log
    by_id = {e.event_id: e for e in log}
    placed = {(e.job_id, e.attempt_id): e.memory_bytes for e in log if isinstance(e, JobAttemptScheduled)}
    for retry in {e.event_id: e for e in log if isinstance(e, JobBecameReady) and e.reason == "retry"}.values():
        failed = by_id[retry.causation_id]
        assert isinstance(failed, JobAttemptCompleted) and failed.attempt_id == retry.after_attempt_id
        assert retry.retry_cause == failed.failure_cause
        policy = POLICY if retry.job_id % 2 == 0 else None
        if retry.retry_rule == OOM_MEMORY_MULTIPLIER:
            assert policy is not None and failed.failure_cause == "out_of_memory"
            memory = placed[(retry.job_id, failed.attempt_id)]
            assert retry.memory_bytes == min(2 * memory, POLICY.oom_max_memory_bytes) > memory
        elif retry.retry_rule == RETRY_EXIT_CODES:
            assert policy is not None and failed.exit_code in policy.retry_exit_codes
        elif retry.retry_rule == MAX_PREEMPTIONS:
            assert policy is not None and failed.failure_cause == "preempted" and retry.preemptible is False
        else:
            assert retry.retry_rule == SYSTEM_FAILURE and failed.failure_cause in SYSTEM_FAILURES
        if policy is None:
            assert (retry.memory_bytes, retry.preemptible) == (None, None)
    rebuilt = fold(log)
    assert rebuilt is not None and rebuilt.snapshot() == run.s.snapshot()
    assert react(rebuilt, PRODUCER, everything=True) == []
