"""Differential property test: the three folds of the batch topic agree on every job.

The lifecycle core (events/core), the scheduler's view (projections/scheduling) and the read model
(projections/readmodel convert + fold) fold the same random logs — re-deliveries, deposed
schedulers, cancel races, Creating jobs, late verdicts (lifecycle_runs.Run) — and wherever no
verdict of the resolver is still on its way (the core has none due), they must say the same thing
about every job: its state, its current attempt, and what its next attempt asks for (memory and
preemptibility, which a retry policy changes). Between a decision and its verdict only the core
knows; that is the one gap the design allows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycle_runs import ACTIONS, RETRY_ACTIONS, RetryRun, Run
from lifecycle_world import Builder, World

from events.catalog import Event, JobCreated, Resources
from events.core.lifecycle import COMPLETE_STATES, CREATING, PENDING, READY, RUNNING, BatchState, evolve
from events.log import Position
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.scheduling.model import JobPhase
from projections.scheduling.state import SchedulingState

_PHASES = {PENDING: JobPhase.PENDING, READY: JobPhase.READY, CREATING: JobPhase.CREATING,
           RUNNING: JobPhase.RUNNING}


class Folds:
    def __init__(self) -> None:
        self.core: BatchState | None = None
        self.scheduler = SchedulingState()
        self.readmodel = ReadModel()
        self.offset = 0
        self.resources: dict[int, Resources] = {}  # each job's spec (the core drops it once the job is done)

    def apply(self, event: Event) -> None:
        if isinstance(event, JobCreated):
            self.resources.setdefault(event.job_id, event.spec.resources)
        self.core = evolve(self.core, event)
        self.scheduler.apply(event)
        self.readmodel.apply_all(convert(event, Position("batch", 0, self.offset)))
        self.offset += 1

    def disagreements(self) -> list[Any]:
        core = self.core
        assert core is not None
        out: list[Any] = []
        for job_id, job in core.jobs.items():
            attempt = job.attempt.attempt_id if job.attempt else None
            row = self.readmodel.rows["jobs"][(core.batch_id, job_id)]
            shown = (row["state"], row["current_attempt_id"] if row["state"] not in COMPLETE_STATES else attempt)
            if shown != (job.state, attempt if job.state not in COMPLETE_STATES else attempt):
                out.append(("read model", job_id, (job.state, attempt), shown))
            entry = self.scheduler.jobs.get((core.batch_id, job_id))
            if job.state in COMPLETE_STATES:
                expected: Any = None  # forgotten once complete
            elif job.completion is not None:
                expected = (JobPhase.FINISHING, attempt, None)  # its attempt ended; the verdict follows
            else:
                expected = (_PHASES[job.state], attempt, None)
            seen = None if entry is None else (entry.phase, entry.attempt_id, entry.held)
            if seen != expected:
                out.append(("scheduler", job_id, expected, seen))
            asks = _asks(job, self.resources[job_id])
            if entry is not None and (entry.demand.memory_bytes, entry.preemptible) != asks:
                out.append(("scheduler asks", job_id, asks, (entry.demand.memory_bytes, entry.preemptible)))
            if (row["memory_bytes"], row["preemptible"]) != asks:
                out.append(("read model asks", job_id, asks, (row["memory_bytes"], row["preemptible"])))
        return out


def _asks(job: Any, r: Resources) -> tuple[int, bool]:
    """(memory, preemptible) the job's next attempt asks for: its spec's, as its retries changed them."""
    o = job.overrides
    memory = o.memory_bytes if o is not None and o.memory_bytes is not None else r.memory_bytes
    return memory, r.preemptible and not (o is not None and o.non_preemptible)


def fold_and_compare(log: list[Event]) -> int:
    """Fold `log` into all three; compare after every event where no verdict is due. Returns how many
    points were compared."""
    folds, compared = Folds(), 0
    for i, event in enumerate(log):
        folds.apply(event)
        if folds.core is not None and not folds.core.verdicts_due:
            differ = folds.disagreements()
            assert differ == [], f"after event {i} ({event}): {differ}"
            compared += 1
    return compared


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_core_the_scheduler_and_the_read_model_agree_on_every_job(data: st.DataObject) -> None:
    run = Run(data)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()
    assert fold_and_compare(run.w.log) > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_they_agree_on_what_retried_jobs_ask_for(data: st.DataObject) -> None:
    """Runs that retry a lot under retry policies (more memory, non-preemptible): the scheduler places
    and the read model shows the next attempt with what the core decided."""
    run = RetryRun(data)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(RETRY_ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()
    assert fold_and_compare(run.w.log) > 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_three_folds_agree_at_the_end_of_a_log_written_before_verdicts(data: st.DataObject) -> None:
    """Every decision from a release before verdicts (awaits_verdict false): each fold judges it where
    it lands. In between they may differ as that release's did (an SJ that raced a cancellation shows
    Running until its JobCancelled), but once the batch is driven to its end they agree on every job.
    One leader only: a deposed leader's SJ on a Ready job is fenced by the core and the scheduling
    state, but the read model shows it as that release did (it keeps no epoch; see
    test_a_deposed_leaders_decision_from_before_verdicts_is_shown_as_that_release_showed_it)."""
    run = Run(data, verdicts=False, deposed_leaders=False)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=20, max_size=80)):
        run.step(action)
    run.drive_to_quiescence()
    folds = Folds()
    for event in run.w.log:
        folds.apply(event)
    assert folds.core is not None and folds.core.verdicts_due == {}
    assert folds.disagreements() == []


def test_a_deposed_leaders_decision_from_before_verdicts_is_shown_as_that_release_showed_it() -> None:
    """The known gap, pinned so that closing it is a visible change: in a log from before verdicts, an
    SJ of a deposed leader (epoch 0 after 1) on a Ready job is refused by the core and the scheduling
    state, which take the leader's later SJ; the read model, keeping no epoch, shows the deposed
    attempt (as that release's read model did) and the job never completes there."""
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: (), 2: ()}))
    w.settle()
    w.append(b.sj(1, "at1", epoch=1, awaits_verdict=False), b.sj(2, "at2", epoch=0, awaits_verdict=False),
             b.sj(2, "at3", epoch=1, awaits_verdict=False))
    w.settle()
    folds = Folds()
    for event in w.log:
        folds.apply(event)
    assert folds.core is not None and folds.core.jobs[2].attempt is not None
    assert folds.core.jobs[2].attempt.attempt_id == "at3"
    assert folds.disagreements() == [("read model", 2, (RUNNING, "at3"), (RUNNING, "at2"))]
