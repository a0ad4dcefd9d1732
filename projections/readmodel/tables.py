"""The read-model tables as the projection sees them: keys, columns written once, columns it updates.

The fold keeps row images as dicts. A row created in a batch is inserted whole (COPY); a row that
existed is loaded with only its key, its mutable columns and the fixed columns the fold reads
(`context`), and written back by updating its mutable columns. So a job's spec is written once
and never read back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    fixed: tuple[str, ...]      # written when the row is inserted, never changed
    mutable: tuple[str, ...]    # rewritten whenever the row changes
    context: tuple[str, ...] = ()  # fixed columns the fold needs, loaded with an existing row
    json: frozenset[str] = frozenset()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.fixed + self.mutable

    @property
    def loaded(self) -> tuple[str, ...]:
        return self.key + self.context + self.mutable


BATCHES = Table(
    name="batches", key=("batch_id",),
    fixed=("user", "billing_project", "token", "attributes", "callback", "cancel_after_n_failures",
           "time_created", "retry_policy"),
    mutable=("state", "cancelled", "deleted", "n_jobs", "n_completed", "n_succeeded", "n_failed",
             "n_cancelled", "time_closed", "time_completed", "msec_mcpu", "cost", "cost_breakdown",
             "n_committed_updates", "usage"),
    json=frozenset({"attributes", "cost_breakdown", "retry_policy", "usage"}))

BATCH_UPDATES = Table(
    name="batch_updates", key=("batch_id", "update_id"),
    fixed=("token", "n_jobs", "n_job_groups", "start_job_id", "start_job_group_id", "time_created"),
    mutable=("committed", "time_committed", "jobs_per_group"),
    json=frozenset({"jobs_per_group"}))

JOB_GROUPS = Table(
    name="job_groups", key=("batch_id", "job_group_id"),
    fixed=("parent_job_group_id", "ancestor_ids", "update_id", "attributes", "callback",
           "cancel_after_n_failures", "time_created"),
    mutable=("cancelled", "state", "n_jobs", "n_completed", "n_succeeded", "n_failed", "n_cancelled",
             "time_completed", "msec_mcpu", "cost", "cost_breakdown", "usage"),
    context=("ancestor_ids",),
    json=frozenset({"attributes", "cost_breakdown", "usage"}))

# memory_bytes and preemptible are what the job's next attempt asks for: a retry policy changes them
JOBS = Table(
    name="jobs", key=("batch_id", "job_id"),
    fixed=("job_group_id", "update_id", "name", "user", "billing_project", "always_run", "n_max_attempts",
           "parent_ids", "attributes", "spec", "cores_mcpu", "storage_gib", "worker_type", "time_created",
           "retry_policy"),
    mutable=("state", "committed", "exit_code", "reason", "current_attempt_id", "n_attempts", "time_ready",
             "not_before", "start_time", "end_time", "duration_ms", "msec_mcpu", "cost", "cost_breakdown",
             "status", "usage", "memory_bytes", "preemptible"),
    context=("job_group_id", "update_id", "cores_mcpu", "storage_gib"),
    json=frozenset({"attributes", "spec", "cost_breakdown", "status", "usage", "retry_policy"}))

ATTEMPTS = Table(
    name="attempts", key=("batch_id", "job_id", "attempt_id"),
    fixed=(),
    mutable=("instance_name", "scheduled_at", "start_time", "end_time", "outcome", "exit_code",
             "failure_cause", "error", "reason", "cores_mcpu", "memory_bytes", "storage_gib", "msec_mcpu",
             "cost", "status", "billed_until", "billed_ms", "retry"),
    json=frozenset({"status", "retry"}))

INSTANCES = Table(
    name="instances", key=("name",),
    fixed=(),
    mutable=("pool", "provider", "state", "cores_mcpu", "memory_bytes", "storage_gib", "region", "preemptible",
             "machine_type", "job_private_for", "provider_id", "agent_version", "time_requested",
             "time_created", "time_activated", "last_heartbeat", "time_deactivated", "time_deleted", "reason",
             "agent_url", "zone", "standing"))

AUDIT = Table(
    name="audit", key=("topic", "partition", "offset"),
    fixed=("batch_id", "job_id", "event_type", "event_id", "occurred_at", "causation_id", "producer",
           "attempt_id"),
    mutable=())

POOL_DECISIONS = Table(
    name="pool_decisions", key=("topic", "partition", "offset"),
    fixed=("pool", "event_id", "occurred_at", "producer", "decision"),
    mutable=(),
    json=frozenset({"decision"}))

QUARANTINE = Table(
    name="quarantine", key=("topic", "partition", "offset"),
    fixed=("projection", "event_type", "reason", "raw", "quarantined_at"),
    mutable=())

STATEFUL = (BATCHES, BATCH_UPDATES, JOB_GROUPS, JOBS, ATTEMPTS, INSTANCES)

# Every table `squall replay --verify` compares, with its ordering key.
PROJECTED: dict[str, tuple[str, ...]] = {
    **{t.name: t.key for t in STATEFUL},
    "audit": ("topic", "partition", "offset", "job_id"),
    "pool_decisions": ("topic", "partition", "offset"),
    "quarantine": ("topic", "partition", "offset"),
    "projection_offsets": ("projection", "topic", "partition"),
}
