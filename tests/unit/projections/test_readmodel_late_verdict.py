"""A worker can report an attempt before the resolver's verdict on it is in the log.

The resolver and the worker both act on the scheduler's SJ, so the partition may read SJ, started,
completed, *then* JobAttemptAccepted and JobCompleted. The read model once recorded the reported
attempt, then took the late verdict for a re-delivery and ignored it, and the job stayed Ready for
ever (no group completed, no callback fired). Every fold must end where the core ends.
"""

from __future__ import annotations

from events.catalog import Event
from events.core.lifecycle import evolve
from events.log import Position
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.scheduling.state import SchedulingState
from tests.unit.core.lifecycle_world import BATCH, Builder, World


def worker_reports_before_the_verdict() -> list[Event]:
    b, world = Builder(), World()
    world.append(b.batch(), b.update(1, n_jobs=1, start_job_id=1), b.job(1), b.commit(1, 1, 1))
    world.settle()
    world.append(b.sj(1, "a1"), b.mjs(1, "a1"), b.mjc(1, "a1", "Success", None, 0))  # before any verdict
    world.settle()
    return world.log


def test_the_log_really_has_the_verdict_after_the_workers_reports() -> None:
    names = [type(e).__name__ for e in worker_reports_before_the_verdict()]
    assert names.index("JobAttemptCompleted") < names.index("JobAttemptAccepted") < names.index("JobCompleted")


def test_every_fold_completes_the_job_with_its_one_attempt() -> None:
    log = worker_reports_before_the_verdict()
    core, scheduler, model = None, SchedulingState(), ReadModel()
    for offset, event in enumerate(log):
        core = evolve(core, event)
        scheduler.apply(event)
        model.apply_all(convert(event, Position("batch", 0, offset)))
    assert core is not None and core.jobs[1].state == "Success"
    job = model.rows["jobs"][(BATCH, 1)]
    assert (job["state"], job["current_attempt_id"], job["n_attempts"]) == ("Success", "a1", 1)
    assert job["start_time"] is not None and job["duration_ms"] is not None
    assert model.rows["attempts"][(BATCH, 1, "a1")]["end_time"] is not None
    assert model.rows["batches"][(BATCH,)]["state"] == "complete"
    assert (BATCH, 1) not in scheduler.jobs  # the scheduler forgets a complete job
