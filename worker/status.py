"""The attempt's status document (Hail's worker status, STATUS_FORMAT_VERSION 5 in batch/batch/worker/worker.py).

Written to status_key(...) in squall's bucket at the end of each step (state "running", the ended
steps' timings) and when the attempt ends; the front end serves it as the job's `status` until
the read model has the completion. Pure: built from the assignment and the steps or the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from events import failures
from events.catalog import AttemptAssigned
from worker.step import StepResult

if TYPE_CHECKING:  # worker.attempt writes running status documents, so it imports this module
    from worker.attempt import AttemptOutcome

STATUS_FORMAT_VERSION = 5
_STATE_OF_OUTCOME = {"Success": "succeeded", "Failed": "failed", "Error": "error", "Cancelled": "cancelled"}


def _container_status(step: StepResult) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": step.name, "state": step.state, "timing": step.timing}
    if step.error:
        doc["error"] = step.error
        doc["short_error"] = failures.SHORT_ERRORS.get(step.failure_cause or "", step.error)
    if step.ran_container or step.container_id:
        doc["container_status"] = {
            "started_at": step.container_started_at, "finished_at": step.container_finished_at,
            "state": "finished" if step.ended_at is not None else "running",
            "exit_code": step.exit_code, "out_of_memory": step.out_of_memory}
    return doc


def _document(a: AttemptAssigned, state: str, steps: list[StepResult], started_at: int, ended_at: int | None,
              region: str) -> dict[str, Any]:
    return {
        "version": STATUS_FORMAT_VERSION, "format_version": STATUS_FORMAT_VERSION,
        "worker": a.instance_name, "batch_id": a.batch_id, "job_id": a.job_id, "attempt_id": a.attempt_id,
        "job_group_id": a.job_group_id, "user": a.user, "state": state,
        "resources": [{"name": "cpu_mcpu", "quantity": a.cores_mcpu},
                      {"name": "memory_bytes", "quantity": a.memory_bytes},
                      {"name": "storage_gib", "quantity": a.storage_gib}],
        "region": region, "start_time": started_at, "end_time": ended_at,
        "timing": {s.name: {"start_time": s.started_at, "finish_time": s.ended_at,
                            "duration": None if s.started_at is None or s.ended_at is None
                            else s.ended_at - s.started_at}
                   for s in steps if s.state != "skipped"},
        "container_statuses": {s.name: _container_status(s) for s in steps if s.state != "skipped"},
    }


def status_document(a: AttemptAssigned, outcome: AttemptOutcome, region: str) -> dict[str, Any]:
    doc = _document(a, _STATE_OF_OUTCOME[outcome.outcome], outcome.steps, outcome.started_at, outcome.ended_at,
                    region)
    if outcome.error:
        doc["error"] = outcome.error
    return doc


def running_status_document(a: AttemptAssigned, steps: list[StepResult], started_at: int,
                            region: str) -> dict[str, Any]:
    """The attempt still running, with the timings of the steps that ended so far."""
    return _document(a, "running", steps, started_at, None, region)
