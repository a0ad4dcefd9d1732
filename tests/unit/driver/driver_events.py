"""Terse constructors of the events the scheduling fold reads, for table-like unit tests."""

from __future__ import annotations

from events.catalog import (
    InstanceActivated,
    InstanceCreated,
    InstanceDeactivated,
    InstanceDeleted,
    InstanceHeartbeat,
    InstanceRequested,
    JobAttemptAccepted,
    JobAttemptCompleted,
    JobAttemptRefused,
    JobAttemptScheduled,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobCreating,
)
from tests.unit.driver.driver_support import job_spec

GIB = 1024**3


def created(job: int, user: str = "alice", batch: int = 1, cores: int = 1000, **spec_kw: object) -> JobCreated:
    return JobCreated(event_id=f"jc{batch}.{job}", occurred_at=0, producer="t", batch_id=batch, job_id=job,
                      update_id=1, job_group_id=0, parent_ids=(), always_run=False, n_max_attempts=20, user=user,
                      billing_project="b", attributes={}, spec=job_spec(cores_mcpu=cores, **spec_kw),  # type: ignore[arg-type]
                      spec_json="{}")


def ready(job: int, batch: int = 1, not_before: int | None = None, at: int = 0,
          after: str | None = None) -> JobBecameReady:
    """Ready as its parents completed, or (`after` an attempt) for a retry of that attempt."""
    return JobBecameReady(event_id=f"r{batch}.{job}.{at}", occurred_at=at, producer="t", batch_id=batch, job_id=job,
                          after_attempt_id=after, not_before=not_before,
                          reason="retry" if after else "parents_complete")


def scheduled(job: int, attempt: str, instance: str, batch: int = 1, epoch: int = 1, cores: int = 1000,
              memory: int = GIB, storage: int = 0, user: str = "alice", awaits_verdict: bool = True) -> JobAttemptScheduled:
    return JobAttemptScheduled(event_id=f"sj{attempt}", occurred_at=0, producer="t", batch_id=batch, job_id=job,
                               attempt_id=attempt, instance_name=instance, scheduler_epoch=epoch, user=user,
                               cores_mcpu=cores, memory_bytes=memory, storage_gib=storage,
                               awaits_verdict=awaits_verdict)


def creating(job: int, attempt: str, instance: str, batch: int = 1, epoch: int = 1,
             awaits_verdict: bool = True) -> JobCreating:
    return JobCreating(event_id=f"cr{attempt}", occurred_at=0, producer="t", batch_id=batch, job_id=job,
                       attempt_id=attempt, instance_name=instance, scheduler_epoch=epoch, user="alice",
                       awaits_verdict=awaits_verdict)


def accepted(decision: JobAttemptScheduled | JobCreating) -> JobAttemptAccepted:
    """The resolver's verdict that the decision counts (what events/core/react publishes)."""
    if isinstance(decision, JobCreating):
        state, cores, memory, storage = "Creating", 1000, GIB, 0
    else:
        state, cores, memory, storage = "Running", decision.cores_mcpu, decision.memory_bytes, decision.storage_gib
    return JobAttemptAccepted(event_id=f"ok{decision.event_id}", occurred_at=decision.occurred_at, producer="t",
                              causation_id=decision.event_id, batch_id=decision.batch_id, job_id=decision.job_id,
                              attempt_id=decision.attempt_id, instance_name=decision.instance_name, state=state,
                              scheduler_epoch=decision.scheduler_epoch, cores_mcpu=cores, memory_bytes=memory,
                              storage_gib=storage)


def refused(decision: JobAttemptScheduled | JobCreating, reason: str = "cancelled") -> JobAttemptRefused:
    state = "Creating" if isinstance(decision, JobCreating) else "Running"
    return JobAttemptRefused(event_id=f"no{decision.event_id}.{decision.scheduler_epoch}",
                             occurred_at=decision.occurred_at, producer="t", causation_id=decision.event_id,
                             batch_id=decision.batch_id, job_id=decision.job_id, attempt_id=decision.attempt_id,
                             instance_name=decision.instance_name, state=state,
                             scheduler_epoch=decision.scheduler_epoch, reason=reason)


def attempt_done(job: int, attempt: str, instance: str, batch: int = 1, at: int = 0,
                 outcome: str = "Success") -> JobAttemptCompleted:
    return JobAttemptCompleted(event_id=f"mjc{attempt}", occurred_at=at, producer="t", batch_id=batch, job_id=job,
                               attempt_id=attempt, instance_name=instance, outcome=outcome, exit_code=0,
                               failure_cause=None, error=None, out_of_memory=False, started_at=None, ended_at=at,
                               steps=(), resource_usage=None)


def completed(job: int, batch: int = 1, attempt: str | None = None, at: int = 0) -> JobCompleted:
    return JobCompleted(event_id=f"done{batch}.{job}", occurred_at=at, producer="t", batch_id=batch, job_id=job,
                        state="Success", attempt_id=attempt, exit_code=0, reason=None, n_attempts=1)


def cancelled(job: int, batch: int = 1) -> JobCancelled:
    return JobCancelled(event_id=f"cx{batch}.{job}", occurred_at=0, producer="t", batch_id=batch, job_id=job,
                        reason="batch_cancelled")


def requested(name: str, pool: str = "standard", cores: int = 4000, at: int = 0,
              job_private_for: str | None = None) -> InstanceRequested:
    return InstanceRequested(event_id=f"ir{name}", occurred_at=at, producer="t", instance_name=name, pool=pool,
                             provider="local", machine_type="n1-standard-4", cores_mcpu=cores,
                             memory_bytes=cores * 4 * GIB // 1000, storage_gib=100, preemptible=True,
                             region="local", job_private_for=job_private_for)


def instance_created(name: str) -> InstanceCreated:
    return InstanceCreated(event_id=f"ic{name}", occurred_at=0, producer="t", instance_name=name, provider="local",
                           provider_id="123")


def activated(name: str, pool: str = "standard", cores: int = 4000, memory: int = 16 * GIB, storage: int = 100,
              at: int = 0) -> InstanceActivated:
    return InstanceActivated(event_id=f"ia{name}.{at}", occurred_at=at, producer="t", instance_name=name, pool=pool,
                             cores_mcpu=cores, memory_bytes=memory, storage_gib=storage, region="local",
                             preemptible=True, agent_version=None)


def heartbeat(name: str, at: int) -> InstanceHeartbeat:
    return InstanceHeartbeat(event_id=f"hb{name}.{at}", occurred_at=at, producer="t", instance_name=name,
                             running_attempt_ids=())


def deactivated(name: str, at: int = 0, reason: str = "drained") -> InstanceDeactivated:
    return InstanceDeactivated(event_id=f"id{name}", occurred_at=at, producer="t", instance_name=name, reason=reason)


def deleted(name: str, at: int = 0) -> InstanceDeleted:
    return InstanceDeleted(event_id=f"del{name}", occurred_at=at, producer="t", instance_name=name, reason="idle")
