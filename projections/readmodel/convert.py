"""convert(event, position) -> ops: the pure first step of the read-model projection.

No I/O, no clock: everything comes from the event and its position in the log. Events the read
models do not show (worker assignments, leader election) convert to no ops, and so do the
scheduler's decisions (SJ, JobCreating) and refusals: an attempt exists once the resolver accepted
its decision (JobAttemptAccepted), exactly as for every other fold. (Decisions from logs written
before verdicts, `awaits_verdict` false, are taken where they land, as then.) Every batch-topic
event but the workers' billing updates (RunningAttemptsReported: one per batch and instance every
billing interval, telemetry rather than a decision) also yields an audit row (the audit index: job
-> its events' positions); instance events do not (heartbeats would swamp it, and they belong to no
batch).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import orjson

from events import catalog as ev
from events.core.decisions import CREATING
from events.errors import UnprojectableEvent
from events.failures import SHORT_ERRORS
from events.log import Position
from projections.readmodel import ops

_WORKER_STATE = {"Success": "succeeded", "Failed": "failed", "Error": "error", "Cancelled": "cancelled"}


class ConvertError(UnprojectableEvent):
    """The event is well-formed Avro but its content cannot be projected (e.g. bad spec_json)."""


def convert(event: ev.Event, position: Position) -> list[ops.Op]:
    return convert_at(event, position.topic, position.partition, position.offset)


def convert_at(event: ev.Event, topic: str, partition: int, offset: int) -> list[ops.Op]:
    """`convert` without building a Position (the projector calls this once per record)."""
    cls = type(event)
    handler = _HANDLERS.get(cls)
    result: list[ops.Op] = handler(event) if handler is not None else []
    if event.TOPIC == "batch" and cls is not ev.RunningAttemptsReported:
        result.append(_audit(event, topic, partition, offset))
    elif cls is ev.PoolScalingDecided:
        result.append(_pool_decision(event, topic, partition, offset))  # type: ignore[arg-type]
    return result


def _pool_decision(e: ev.PoolScalingDecided, topic: str, partition: int, offset: int) -> ops.RecordPoolDecision:
    """The autoscaler's decision for a pool, kept whole by its position (the pools page, `audit --pool`)."""
    decision = e.to_avro()
    for envelope in ("event_id", "occurred_at", "producer", "causation_id"):
        decision.pop(envelope, None)
    return ops.RecordPoolDecision(topic=topic, partition=partition, offset=offset, pool=e.pool,
                                  event_id=e.event_id, occurred_at=e.occurred_at, producer=e.producer,
                                  decision=decision)


def _audit(event: Any, topic: str, partition: int, offset: int) -> ops.RecordAudit:
    cls = type(event)
    shape = _AUDIT_SHAPES.get(cls)
    if shape is None:
        shape = _AUDIT_SHAPES[cls] = _audit_shape(cls)
    has_job, has_attempt, has_after = shape
    return ops.RecordAudit(  # positional (see _POSITIONAL): batch_id, job_id, topic, partition, offset,
        # event_type, event_id, occurred_at, causation_id, producer, attempt_id
        event.batch_id, event.job_id if has_job else None, topic, partition, offset, event.SCHEMA_NAME,
        event.event_id, event.occurred_at, event.causation_id, event.producer,
        (event.attempt_id if has_attempt else None) or (event.after_attempt_id if has_after else None))


# per event type: whether it has the audit row's optional fields job_id, attempt_id, after_attempt_id
_AUDIT_SHAPES: dict[type, tuple[bool, bool, bool]] = {}


def _audit_shape(cls: type) -> tuple[bool, bool, bool]:
    names = {f.name for f in fields(cls)}  # event types are dataclasses (events/catalog.py)
    return "job_id" in names, "attempt_id" in names, "after_attempt_id" in names


# _POSITIONAL: the ops of the events every job has (and the audit row of every event) are built
# with positional arguments, in the order of the op's fields: a dataclass __init__ called with
# keywords costs about twice as much, and replay builds one such op per event.
# tests/unit/projections/test_readmodel_convert.py checks every field of each by name.


# --- batch topic --------------------------------------------------------------------------------

def _batch_created(e: ev.BatchCreated) -> list[ops.Op]:
    return [ops.CreateBatch(batch_id=e.batch_id, user=e.user, billing_project=e.billing_project,
                            token=e.token, attributes=dict(e.attributes), callback=e.callback,
                            cancel_after_n_failures=e.cancel_after_n_failures, at=e.occurred_at,
                            retry_policy=retry_policy_json(e.retry_policy))]


def retry_policy_json(policy: ev.RetryPolicy | None) -> dict[str, Any] | None:
    """A retry policy as the API and the read model show it (its spec field's names; the cap in bytes)."""
    if policy is None:
        return None
    shown: dict[str, Any] = {k: v for k, v in (
        ("oom_memory_multiplier", policy.oom_memory_multiplier), ("oom_max_memory_bytes", policy.oom_max_memory_bytes),
        ("max_preemptions", policy.max_preemptions)) if v is not None}
    if policy.retry_exit_codes:
        shown["retry_exit_codes"] = list(policy.retry_exit_codes)
    return shown


def _update_created(e: ev.BatchUpdateCreated) -> list[ops.Op]:
    return [ops.CreateUpdate(batch_id=e.batch_id, update_id=e.update_id, token=e.token, n_jobs=e.n_jobs,
                             n_job_groups=e.n_job_groups, start_job_id=e.start_job_id,
                             start_job_group_id=e.start_job_group_id, at=e.occurred_at)]


def _update_committed(e: ev.BatchUpdateCommitted) -> list[ops.Op]:
    return [ops.CommitUpdate(batch_id=e.batch_id, update_id=e.update_id, n_jobs=e.n_jobs, at=e.occurred_at)]


def _group_created(e: ev.JobGroupCreated) -> list[ops.Op]:
    if e.job_group_id == e.parent_job_group_id or e.job_group_id <= 0:
        raise ConvertError(f"JobGroupCreated: group {e.job_group_id} cannot have parent {e.parent_job_group_id}")
    return [ops.CreateJobGroup(batch_id=e.batch_id, job_group_id=e.job_group_id,
                               parent_job_group_id=e.parent_job_group_id, update_id=e.update_id,
                               attributes=dict(e.attributes), callback=e.callback,
                               cancel_after_n_failures=e.cancel_after_n_failures, at=e.occurred_at)]


def _cancel_group(e: ev.JobGroupCancelRequested | ev.JobGroupCancelled) -> list[ops.Op]:
    return [ops.CancelJobGroup(batch_id=e.batch_id, job_group_id=e.job_group_id)]


def _cancel_batch(e: ev.BatchCancelRequested | ev.BatchCancelled) -> list[ops.Op]:
    return [ops.CancelJobGroup(batch_id=e.batch_id, job_group_id=0)]


def _batch_deleted(e: ev.BatchDeleted) -> list[ops.Op]:
    return [ops.DeleteBatch(batch_id=e.batch_id)]


def _batch_completed(e: ev.BatchCompleted) -> list[ops.Op]:
    return [ops.CompleteBatch(batch_id=e.batch_id, n_jobs=e.n_jobs, at=e.occurred_at)]


def _job_created(e: ev.JobCreated) -> list[ops.Op]:
    try:
        spec = orjson.loads(e.spec_json)
    except orjson.JSONDecodeError as exc:
        raise ConvertError(f"JobCreated {e.batch_id}/{e.job_id}: spec_json is not JSON: {exc}") from exc
    r = e.spec.resources
    return [ops.CreateJob(  # positional (see _POSITIONAL), in the order of ops.CreateJob's fields
        e.batch_id, e.job_id, e.job_group_id, e.update_id, e.attributes.get("name"), e.user, e.billing_project,
        e.always_run, e.n_max_attempts, tuple(e.parent_ids), dict(e.attributes), spec, r.cores_mcpu,
        r.memory_bytes, r.storage_gib, r.preemptible, r.worker_type, e.occurred_at,
        None if e.retry_policy is None else retry_policy_json(e.retry_policy))]


def _job_ready(e: ev.JobBecameReady) -> list[ops.Op]:
    # positional (see _POSITIONAL): batch_id, job_id, after_attempt_id, not_before, at, retry_rule,
    # retry_cause, memory_bytes, preemptible
    return [ops.MarkJobReady(e.batch_id, e.job_id, e.after_attempt_id, e.not_before, e.occurred_at, e.retry_rule,
                             e.retry_cause, e.memory_bytes, e.preemptible)]


def _attempt_accepted(e: ev.JobAttemptAccepted) -> list[ops.Op]:
    """The resolver's verdict, not the scheduler's decision (an SJ or JobCreating alone shows nothing:
    events/core/decisions.py): the attempt exists from here, scheduled at the decision's time."""
    # positional (see _POSITIONAL): batch_id, job_id, attempt_id, instance_name, cores_mcpu, memory_bytes,
    # storage_gib, creating, at
    return [ops.ScheduleAttempt(e.batch_id, e.job_id, e.attempt_id, e.instance_name, e.cores_mcpu,
                                e.memory_bytes, e.storage_gib, e.state == CREATING, e.occurred_at)]


def _decided_before_verdicts(e: ev.JobAttemptScheduled | ev.JobCreating) -> list[ops.Op]:
    """A decision written before verdicts existed gets none: it shows where it lands, as it did then
    (the fold takes it only for a Ready job, or for the boot of the job's Creating attempt). With
    `awaits_verdict` it shows nothing until its JobAttemptAccepted."""
    if e.awaits_verdict:
        return []
    if isinstance(e, ev.JobCreating):  # it carries no resources: the job's own request
        return [ops.ScheduleAttempt(e.batch_id, e.job_id, e.attempt_id, e.instance_name, None, None, None, True,
                                    e.occurred_at)]
    return [ops.ScheduleAttempt(e.batch_id, e.job_id, e.attempt_id, e.instance_name, e.cores_mcpu, e.memory_bytes,
                                e.storage_gib, False, e.occurred_at)]


def _attempt_started(e: ev.JobAttemptStarted) -> list[ops.Op]:
    # positional (see _POSITIONAL): batch_id, job_id, attempt_id, instance_name, started_at
    return [ops.StartAttempt(e.batch_id, e.job_id, e.attempt_id, e.instance_name, e.started_at)]


def _attempt_completed(e: ev.JobAttemptCompleted) -> list[ops.Op]:
    # positional (see _POSITIONAL): batch_id, job_id, attempt_id, instance_name, outcome, exit_code,
    # failure_cause, error, started_at, ended_at, status
    return [ops.EndAttempt(e.batch_id, e.job_id, e.attempt_id, e.instance_name, e.outcome, e.exit_code,
                           e.failure_cause, e.error, e.started_at, e.ended_at, worker_status(e))]


def _running_reported(e: ev.RunningAttemptsReported) -> list[ops.Op]:
    return [ops.ReportRunning(e.batch_id, a.job_id, a.attempt_id, e.instance_name, e.running_at)
            for a in e.attempts]


def _job_completed(e: ev.JobCompleted) -> list[ops.Op]:
    # positional (see _POSITIONAL): batch_id, job_id, state, attempt_id, exit_code, reason, n_attempts, at
    return [ops.CompleteJob(e.batch_id, e.job_id, e.state, e.attempt_id, e.exit_code, e.reason, e.n_attempts,
                            e.occurred_at)]


def _job_cancelled(e: ev.JobCancelled) -> list[ops.Op]:
    return [ops.CompleteJob(batch_id=e.batch_id, job_id=e.job_id, state="Cancelled", attempt_id=None,
                            exit_code=None, reason=e.reason, n_attempts=None, at=e.occurred_at)]


def worker_status(e: ev.JobAttemptCompleted) -> dict[str, Any]:
    """The MJC as Hail's worker status document (STATUS_FORMAT_VERSION 5 field names)."""
    containers: dict[str, Any] = {}
    for step in e.steps:
        timing: dict[str, Any] = {}
        if step.started_at is not None:
            finish = step.ended_at
            timing["running"] = {"start_time": step.started_at, "finish_time": finish,
                                 "duration": None if finish is None else finish - step.started_at}
        container: dict[str, Any] = {
            "name": step.name, "state": step.state, "timing": timing,
            "container_status": {"started_at": step.started_at, "finished_at": step.ended_at,
                                 "state": "finished" if step.ended_at is not None else "running",
                                 "exit_code": step.exit_code, "out_of_memory": step.out_of_memory}}
        if step.error is not None:
            container["error"] = step.error
        if step.out_of_memory:
            container["short_error"] = "out of memory"
        containers[step.name] = container
    status: dict[str, Any] = {
        "version": 5, "worker": e.instance_name, "batch_id": e.batch_id, "job_id": e.job_id,
        "attempt_id": e.attempt_id, "state": _WORKER_STATE.get(e.outcome, e.outcome.lower()),
        "format_version": 5, "start_time": e.started_at, "end_time": e.ended_at,
        "exit_code": e.exit_code, "out_of_memory": e.out_of_memory, "failure_cause": e.failure_cause,
        "container_statuses": containers,
    }
    if e.error is not None:
        status["error"] = e.error
    if e.failure_cause in SHORT_ERRORS:
        status["short_error"] = SHORT_ERRORS[e.failure_cause]
    if e.resource_usage is not None:
        status["resource_usage"] = e.resource_usage.to_avro()
    return status


# --- instance topic -----------------------------------------------------------------------------

def _instance_requested(e: ev.InstanceRequested) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state="pending", values=(
        ("pool", e.pool), ("provider", e.provider), ("machine_type", e.machine_type),
        ("cores_mcpu", e.cores_mcpu), ("memory_bytes", e.memory_bytes), ("storage_gib", e.storage_gib),
        ("preemptible", e.preemptible), ("region", e.region), ("job_private_for", e.job_private_for),
        ("time_requested", e.occurred_at), ("standing", e.standing), ("zone", e.zone)))]


def _instance_created(e: ev.InstanceCreated) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state="pending", values=(
        ("provider", e.provider), ("provider_id", e.provider_id), ("time_created", e.occurred_at),
        ("zone", e.zone)))]


def _instance_activated(e: ev.InstanceActivated) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state="active", values=(
        ("pool", e.pool), ("cores_mcpu", e.cores_mcpu), ("memory_bytes", e.memory_bytes),
        ("storage_gib", e.storage_gib), ("region", e.region), ("preemptible", e.preemptible),
        ("agent_version", e.agent_version), ("agent_url", e.agent_url), ("time_activated", e.occurred_at)))]


def _instance_heartbeat(e: ev.InstanceHeartbeat) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state=None, values=(), heartbeat_at=e.occurred_at)]


def _instance_deactivated(e: ev.InstanceDeactivated) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state="inactive", values=(
        ("time_deactivated", e.occurred_at), ("reason", e.reason)))]


def _instance_deleted(e: ev.InstanceDeleted) -> list[ops.Op]:
    return [ops.UpsertInstance(name=e.instance_name, state="deleted", values=(
        ("time_deleted", e.occurred_at), ("reason", e.reason)))]


_HANDLERS: dict[type, Any] = {
    ev.BatchCreated: _batch_created,
    ev.BatchUpdateCreated: _update_created,
    ev.BatchUpdateCommitted: _update_committed,
    ev.JobGroupCreated: _group_created,
    ev.JobGroupCancelRequested: _cancel_group,
    ev.JobGroupCancelled: _cancel_group,
    ev.BatchCancelRequested: _cancel_batch,
    ev.BatchCancelled: _cancel_batch,
    ev.BatchDeleted: _batch_deleted,
    ev.BatchCompleted: _batch_completed,
    ev.JobCreated: _job_created,
    ev.JobBecameReady: _job_ready,
    ev.JobAttemptAccepted: _attempt_accepted,
    ev.JobAttemptScheduled: _decided_before_verdicts,
    ev.JobCreating: _decided_before_verdicts,
    ev.JobAttemptStarted: _attempt_started,
    ev.JobAttemptCompleted: _attempt_completed,
    ev.RunningAttemptsReported: _running_reported,
    ev.JobCompleted: _job_completed,
    ev.JobCancelled: _job_cancelled,
    ev.InstanceRequested: _instance_requested,
    ev.InstanceCreated: _instance_created,
    ev.InstanceActivated: _instance_activated,
    ev.InstanceHeartbeat: _instance_heartbeat,
    ev.InstanceDeactivated: _instance_deactivated,
    ev.InstanceDeleted: _instance_deleted,
}
