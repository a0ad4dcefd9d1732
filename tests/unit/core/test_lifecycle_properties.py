"""Property tests of the lifecycle over random DAGs and random runs (hypothesis).

A run interleaves, in an order hypothesis picks: the resolver reacting (its derived events held
"in flight" and landing later, between other producers' events, as they do in Kafka), schedulers
placing Ready jobs (sometimes from a deposed epoch) or requesting a job-private instance for them
(JobCreating), job-private instances booting (the SJ of the Creating attempt) or timing out,
workers starting and completing attempts with every kind of outcome, users cancelling the batch or
a group, re-deliveries of any earlier event, and reports from stale attempts. After every step:
- a re-delivered event or a stale attempt's report changed nothing;
- the counters add up, per group, to what the jobs say;
- a completed job never changes again, and no job is placed (SJ or JobCreating accepted) while
  cancelled unless always_run; an attempt placed before is assigned to its worker only with its kill;
- no derived event is ever appended twice (react never re-derives what the state already shows).
At the end the run is driven to quiescence: the batch completes exactly once, and a rebuild from
the log (fold from scratch, react over everything) derives nothing new.

Runs that once failed are pinned with @example: `Scripted` replays their draws in order.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lifecycle_runs import ACTIONS, Pick, Run, Scripted
from lifecycle_world import PRODUCER

from events.catalog import (
    BatchCompleted,
    BatchCreated,
    Event,
    JobAttemptAccepted,
    JobAttemptRefused,
    JobCreating,
)
from events.core.lifecycle import fold, react


def _is_creating(e: Event) -> bool:
    return isinstance(e, JobCreating)


# A deposed scheduler's JobCreating delivered again once a newer leader had placed a job: the core
# took it for a refused attempt, so the boot SJ of the job's own Creating attempt was refused for ever
# and the batch never quiesced. First the issue's run (9 jobs, a group cancelled), then the shrunk one.
_ISSUE_RUN = Scripted(9, *[set()] * 9, *[0] * 9, None, None, 1,
                      ["cancel_group"] + ["react"] * 12 + ["land", "create", "schedule", "schedule", "start",
                                                           "schedule", "redeliver"],
                      2, 10, 1, 2, 1, 0, 3, 0, 0, 4, 0, 0, Pick(_is_creating, "JobCreating"))
_SHRUNK_RUN = Scripted(4, set(), set(), set(), set(), 0, 0, 0, 0, None, None, 1,
                       ["react"] * 13 + ["land", "land", "land", "redeliver", "create", "schedule", "redeliver"],
                       1, 1, 1, Pick(lambda e: isinstance(e, BatchCreated), "BatchCreated"), 1, 2, 1, 0,
                       Pick(_is_creating, "JobCreating"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@example(data=_ISSUE_RUN)
@example(data=_SHRUNK_RUN)
def test_random_runs_keep_every_invariant_and_rebuild_to_the_same_state(data):
    run = Run(data)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()

    s = run.s
    assert s.complete and s.n_completed == s.n_jobs
    assert s.verdicts_due == {}, "every verdict was published"
    # distinct ids: a run may re-deliver the BatchCompleted of a batch that completed mid-run
    completions = {e.event_id: e for e in run.w.log if isinstance(e, BatchCompleted)}.values()
    assert [e.n_jobs for e in completions] == [s.n_jobs], "the batch completes exactly once"

    rebuilt = fold(run.w.log)
    assert rebuilt is not None and rebuilt.snapshot() == s.snapshot()
    assert react(rebuilt, PRODUCER, everything=True) == []
    without_repeats = fold(_first_occurrences(run.w.log))
    assert without_repeats is not None and without_repeats.snapshot() == s.snapshot()


def _first_occurrences(log: list[Event]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for e in log:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_react_is_a_function_of_the_state_not_of_the_history(data):
    """Folding the same log twice and reacting over everything derives identical events (ids,
    times, causes): what a resolver restarted after a crash would append is what it appended."""
    run = Run(data)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=10, max_size=40)):
        run.step(action)
    first, second = fold(run.w.log), fold(list(run.w.log))
    assert first is not None and second is not None
    assert react(first, PRODUCER, everything=True) == react(second, PRODUCER, everything=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_log_written_before_verdicts_keeps_every_invariant_and_rebuilds_to_the_same_state(data):
    """The same runs with every decision from a release before verdicts (awaits_verdict false): the
    core judges each where it lands, as that release did, and owes no verdict on any."""
    run = Run(data, verdicts=False)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()
    s = run.s
    assert s.complete and s.n_completed == s.n_jobs
    assert s.verdicts_due == {}
    assert not any(isinstance(e, JobAttemptAccepted | JobAttemptRefused) for e in run.w.log)
    rebuilt = fold(run.w.log)
    assert rebuilt is not None and rebuilt.snapshot() == s.snapshot()
    assert react(rebuilt, PRODUCER, everything=True) == []
