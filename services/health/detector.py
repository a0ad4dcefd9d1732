"""Instance health (pure): which instances are lost, and the events that say so.

An active instance whose last heartbeat is older than `heartbeat_timeout_ms` is deactivated with
reason `not_responding`; a pending one that never activated within `activation_timeout_ms` gets
`activation_timeout`. Every attempt still placed on a lost instance — including one the resolver
accepted after the instance was already inactive — ends with an MJC (outcome Error, cause
`instance_lost`), so the lifecycle core gives the job a new attempt while attempts remain. A
worker that was merely slow and reports later is fenced by the attempt id.

An instance its provider preempted (deactivated with reason `preempted` by the autoscaler, which
asks the provider every loop) is gone with its containers: its attempts end at once, without the
drain grace, with cause `preempted`, which retry policies count (`max_preemptions`). Only the
provider's word makes a preemption: an instance that merely went silent stays `instance_lost`.

Event ids are derived from the instance and attempt, so a health check that runs twice (or a
new leader re-deriving after a crash) appends recognisably identical events.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.catalog import Event, InstanceDeactivated, JobAttemptCompleted
from events.envelope import derived_event_id
from events.failures import INSTANCE_LOST, PREEMPTED
from projections.scheduling.model import InstanceEntry, InstanceState
from projections.scheduling.state import SchedulingState

PRODUCER = "health"
NOT_RESPONDING = "not_responding"
ACTIVATION_TIMEOUT = "activation_timeout"
PREEMPTED_REASON = "preempted"  # InstanceDeactivated.reason when the provider preempted the instance


@dataclass(frozen=True, slots=True)
class HealthSettings:
    heartbeat_timeout_ms: int = 60_000
    activation_timeout_ms: int = 300_000  # Hail: a VM that does not activate in 5 min is killed
    # after a deactivation, how long the worker may still report its own attempts before they are ended
    drain_grace_ms: int = 30_000


def lost_instance_events(state: SchedulingState, now_ms: int, settings: HealthSettings) -> list[Event]:
    """Deactivations for silent instances, and MJCs for the attempts they (or inactive ones) hold."""
    events: list[Event] = []
    for inst in state.instances.values():
        reason = _lost_reason(inst, now_ms, settings)
        if reason is not None:
            events.append(InstanceDeactivated(
                event_id=derived_event_id("InstanceDeactivated", inst.name, reason), occurred_at=now_ms,
                producer=PRODUCER, instance_name=inst.name, reason=reason))
            events.extend(_end_attempts(state, inst, now_ms, reason))
        elif inst.state is InstanceState.INACTIVE and inst.deactivation_reason == PREEMPTED_REASON:
            events.extend(_end_attempts(state, inst, now_ms, PREEMPTED_REASON))  # nothing left to drain
        elif inst.state is InstanceState.INACTIVE and inst.deactivated_at is not None \
                and now_ms - inst.deactivated_at >= settings.drain_grace_ms:
            events.extend(_end_attempts(state, inst, now_ms, "deactivated"))
    return events


def _lost_reason(inst: InstanceEntry, now_ms: int, settings: HealthSettings) -> str | None:
    if inst.state is InstanceState.ACTIVE and now_ms - inst.last_sign_of_life() > settings.heartbeat_timeout_ms:
        return NOT_RESPONDING
    if inst.state is InstanceState.PENDING and now_ms - inst.requested_at > settings.activation_timeout_ms:
        return ACTIVATION_TIMEOUT
    return None


def _end_attempts(state: SchedulingState, inst: InstanceEntry, now_ms: int, reason: str) -> list[Event]:
    ended: list[tuple[int, int, str]] = []
    # an attempt whose decision is not judged yet is left for a later check: ending it before its
    # verdict is in the log would report on an attempt no fold has accepted yet
    for attempt_id in sorted(inst.attempts):
        attempt = state.attempts.get(attempt_id)
        if attempt is not None and not attempt.held:
            ended.append((attempt.job[0], attempt.job[1], attempt_id))
    waiting = state.private_job_waiting(inst)  # a Creating job whose instance will never come
    if waiting is not None and waiting.attempt_id is not None and waiting.held is None:
        ended.append((waiting.key[0], waiting.key[1], waiting.attempt_id))
    preempted = reason == PREEMPTED_REASON
    return [JobAttemptCompleted(
        event_id=derived_event_id("JobAttemptCompleted", "health", batch_id, job_id, attempt_id),
        occurred_at=now_ms, producer=PRODUCER, batch_id=batch_id, job_id=job_id, attempt_id=attempt_id,
        instance_name=inst.name, outcome="Error", exit_code=None,
        failure_cause=PREEMPTED if preempted else INSTANCE_LOST,
        error=f"instance {inst.name} was preempted" if preempted else f"instance {inst.name} was lost ({reason})",
        out_of_memory=False, started_at=None, ended_at=now_ms, steps=(), resource_usage=None)
        for batch_id, job_id, attempt_id in ended]
