"""The read-model fold: ops applied to row images, with the guards that make it idempotent.

Pure: no I/O and no clock. The sink loads the rows a batch of ops touches (`needs.keys_to_load`), applies
the ops here, then writes the images that changed; unit tests and `squall audit --at` fold from
an empty model. Every op is guarded by the current row, so applying an event twice, or an older
event after a newer one, changes nothing:
- rows are created only when absent; updates are committed and jobs completed once (flags/state);
- an attempt exists once the resolver accepted its decision (JobAttemptAccepted; whether a decision
  counts is never judged here, see events/core/decisions.py), once (its row); a retry only of the
  job's current attempt; an attempt is billed what its start, its end and the latest report of it
  running say, settled whenever one of them changes (ledger.py), so a re-delivery bills nothing more.
  A decision from before verdicts (`awaits_verdict` false: logs of earlier releases) is taken where
  it lands, by the rule of those releases: a fresh attempt of a Ready job, or the boot of a Creating one;
- instance states only move forward (pending < active < inactive < deleted).
Counters follow Hail: a job counts in its group and every ancestor group, and in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from events.errors import UnprojectableEvent
from projections.cost import PriceTable, Pricing
from projections.readmodel import ops
from projections.readmodel.ledger import Ledger
from projections.readmodel.tables import (
    ATTEMPTS,
    BATCH_UPDATES,
    BATCHES,
    INSTANCES,
    JOB_GROUPS,
    JOBS,
    STATEFUL,
)

COMPLETE_STATES = frozenset({"Success", "Failed", "Error", "Cancelled"})
_COUNTER = {"Success": "n_succeeded", "Failed": "n_failed", "Error": "n_failed", "Cancelled": "n_cancelled"}
_INSTANCE_RANK = {"pending": 0, "active": 1, "inactive": 2, "deleted": 3}

Key = tuple[Any, ...]
_BATCHES, _JOB_GROUPS, _JOBS = BATCHES.name, JOB_GROUPS.name, JOBS.name


class UnknownEntity(UnprojectableEvent):
    """An event names a batch, update, group or job the log never created: the log is inconsistent."""


class ReadModel:
    """Row images keyed by primary key, plus what changed since `clear_changes`."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices = prices or PriceTable()
        self.ledger = Ledger(Pricing(self.prices))
        self.rows: dict[str, dict[Key, dict[str, Any]]] = {t.name: {} for t in STATEFUL}
        self.audit: list[ops.RecordAudit] = []
        self.pool_decisions: list[ops.RecordPoolDecision] = []  # append-only, like the audit index
        self.committed_updates: list[tuple[int, int]] = []  # for jobs of the update not held in memory
        # (batch, job, attempt, at): attempts not held in memory to end as cancelled (_end_refused_attempt)
        self.ended_attempts: list[tuple[int, int, str, int]] = []
        self.new: dict[str, set[Key]] = {t.name: set() for t in STATEFUL}
        self.dirty: dict[str, set[Key]] = {t.name: set() for t in STATEFUL}

    # --- bookkeeping ------------------------------------------------------------------------
    def load(self, table: str, key: Key, row: dict[str, Any]) -> None:
        """Hold an existing row (from the database); it is written back only if it changes."""
        self.rows[table][key] = row

    def clear_changes(self) -> None:
        self.audit = []
        self.pool_decisions = []
        self.committed_updates = []
        self.ended_attempts = []
        for name in self.new:
            self.new[name].clear()
            self.dirty[name].clear()

    def get(self, table: str, key: Key) -> dict[str, Any] | None:
        return self.rows[table].get(key)

    def _insert(self, table: str, key: Key, row: dict[str, Any]) -> dict[str, Any]:
        self.rows[table][key] = row
        self.new[table].add(key)
        return row

    def _touch(self, table: str, key: Key) -> None:
        if key not in self.new[table]:
            self.dirty[table].add(key)

    def apply_all(self, op_list: Iterable[ops.Op]) -> None:
        apply = _APPLY
        audit = self.audit.append
        record_audit = ops.RecordAudit
        for op in op_list:  # the same as self.apply(op) for each, with the most frequent op inline
            kind = type(op)
            if kind is record_audit:
                audit(op)  # type: ignore[arg-type]
            else:
                apply[kind](self, op)

    def apply(self, op: ops.Op) -> None:
        _APPLY[type(op)](self, op)

    # --- lookups that must succeed --------------------------------------------------------------
    def _batch(self, batch_id: int) -> dict[str, Any]:
        row = self.rows[_BATCHES].get((batch_id,))
        if row is None:
            raise UnknownEntity(f"batch {batch_id} has no BatchCreated before this event")
        return row

    def _group(self, batch_id: int, group_id: int) -> dict[str, Any]:
        row = self.rows[_JOB_GROUPS].get((batch_id, group_id))
        if row is None:
            raise UnknownEntity(f"job group {batch_id}/{group_id} has no JobGroupCreated before this event")
        return row

    def _job(self, batch_id: int, job_id: int) -> dict[str, Any]:
        row = self.rows[_JOBS].get((batch_id, job_id))
        if row is None:
            raise UnknownEntity(f"job {batch_id}/{job_id} has no JobCreated before this event")
        return row

    # --- batches, updates, groups -----------------------------------------------------------
    def _create_batch(self, op: ops.CreateBatch) -> None:
        if self.get(BATCHES.name, (op.batch_id,)) is not None:
            return
        self._insert(BATCHES.name, (op.batch_id,), {
            "batch_id": op.batch_id, "user": op.user, "billing_project": op.billing_project, "token": op.token,
            "attributes": op.attributes, "callback": op.callback,
            "cancel_after_n_failures": op.cancel_after_n_failures, "time_created": op.at,
            "retry_policy": op.retry_policy, "state": "complete", "cancelled": False, "deleted": False, "n_jobs": 0, "n_completed": 0,
            "n_succeeded": 0, "n_failed": 0, "n_cancelled": 0, "time_closed": None, "time_completed": None,
            "msec_mcpu": 0, "cost": 0.0, "cost_breakdown": {}, "usage": {}, "n_committed_updates": 0})
        if self.get(JOB_GROUPS.name, (op.batch_id, 0)) is None:  # the root group comes with the batch
            self._insert(JOB_GROUPS.name, (op.batch_id, 0), _new_group(
                op.batch_id, 0, None, [0], None, op.attributes, op.callback, op.cancel_after_n_failures, op.at))

    def _create_update(self, op: ops.CreateUpdate) -> None:
        key = (op.batch_id, op.update_id)
        if self.get(BATCH_UPDATES.name, key) is not None:
            return
        self._batch(op.batch_id)
        self._insert(BATCH_UPDATES.name, key, {
            "batch_id": op.batch_id, "update_id": op.update_id, "token": op.token, "n_jobs": op.n_jobs,
            "n_job_groups": op.n_job_groups, "start_job_id": op.start_job_id,
            "start_job_group_id": op.start_job_group_id, "time_created": op.at, "committed": False,
            "time_committed": None, "jobs_per_group": {}})

    def _commit_update(self, op: ops.CommitUpdate) -> None:
        key = (op.batch_id, op.update_id)
        update = self.get(BATCH_UPDATES.name, key)
        if update is None:
            raise UnknownEntity(f"update {op.batch_id}/{op.update_id} has no BatchUpdateCreated before its commit")
        if update["committed"]:
            return
        update["committed"] = True
        update["time_committed"] = op.at
        self._touch(BATCH_UPDATES.name, key)
        batch = self._batch(op.batch_id)
        batch["n_jobs"] += op.n_jobs
        batch["n_committed_updates"] += 1
        if batch["time_closed"] is None:
            batch["time_closed"] = op.at
        if op.n_jobs > 0:
            batch["state"] = "running"
            batch["time_completed"] = None
        self._touch(BATCHES.name, (op.batch_id,))
        for group_id, count in update["jobs_per_group"].items():
            for ancestor in self._group(op.batch_id, int(group_id))["ancestor_ids"]:
                group = self._group(op.batch_id, ancestor)
                group["n_jobs"] += count
                if count > 0:
                    group["state"] = "running"
                    group["time_completed"] = None
                self._touch(JOB_GROUPS.name, (op.batch_id, ancestor))
        for job_key, job in self.rows[JOBS.name].items():
            if job_key[0] == op.batch_id and job["update_id"] == op.update_id and not job["committed"]:
                job["committed"] = True
                self._touch(JOBS.name, job_key)
        self.committed_updates.append(key)

    def _create_group(self, op: ops.CreateJobGroup) -> None:
        key = (op.batch_id, op.job_group_id)
        if self.get(JOB_GROUPS.name, key) is not None:
            return
        parent = self._group(op.batch_id, op.parent_job_group_id)
        self._insert(JOB_GROUPS.name, key, _new_group(
            op.batch_id, op.job_group_id, op.parent_job_group_id, [op.job_group_id, *parent["ancestor_ids"]],
            op.update_id, op.attributes, op.callback, op.cancel_after_n_failures, op.at))

    def _cancel_group(self, op: ops.CancelJobGroup) -> None:
        group = self._group(op.batch_id, op.job_group_id)
        if not group["cancelled"]:
            group["cancelled"] = True
            self._touch(JOB_GROUPS.name, (op.batch_id, op.job_group_id))
        if op.job_group_id == 0:
            batch = self._batch(op.batch_id)
            if not batch["cancelled"]:
                batch["cancelled"] = True
                self._touch(BATCHES.name, (op.batch_id,))

    def _delete_batch(self, op: ops.DeleteBatch) -> None:
        batch = self._batch(op.batch_id)
        if not batch["deleted"]:
            batch["deleted"] = True
            self._touch(BATCHES.name, (op.batch_id,))

    def _complete_batch(self, op: ops.CompleteBatch) -> None:
        batch = self._batch(op.batch_id)
        # a completion derived for fewer jobs than the batch now has is stale (a later update reopened it)
        if batch["state"] != "complete" and batch["n_jobs"] == op.n_jobs:
            batch["state"] = "complete"
            batch["time_completed"] = op.at
            self._touch(BATCHES.name, (op.batch_id,))

    # --- jobs and attempts ------------------------------------------------------------------
    def _create_job(self, op: ops.CreateJob) -> None:
        key = (op.batch_id, op.job_id)
        if self.get(JOBS.name, key) is not None:
            return
        update = self.get(BATCH_UPDATES.name, (op.batch_id, op.update_id))
        if update is None:
            raise UnknownEntity(f"job {op.batch_id}/{op.job_id}: update {op.update_id} has no BatchUpdateCreated")
        self._group(op.batch_id, op.job_group_id)
        self._insert(JOBS.name, key, {
            "batch_id": op.batch_id, "job_id": op.job_id, "job_group_id": op.job_group_id,
            "update_id": op.update_id, "name": op.name, "user": op.user, "billing_project": op.billing_project,
            "always_run": op.always_run, "n_max_attempts": op.n_max_attempts, "parent_ids": list(op.parent_ids),
            "attributes": op.attributes, "spec": op.spec, "cores_mcpu": op.cores_mcpu,
            "memory_bytes": op.memory_bytes, "storage_gib": op.storage_gib, "preemptible": op.preemptible,
            "worker_type": op.worker_type, "time_created": op.at, "retry_policy": op.retry_policy, "state": "Pending",
            "committed": bool(update["committed"]), "exit_code": None, "reason": None,
            "current_attempt_id": None, "n_attempts": 0, "time_ready": None, "not_before": None,
            "start_time": None, "end_time": None, "duration_ms": None, "msec_mcpu": 0, "cost": 0.0,
            "cost_breakdown": {}, "usage": {}, "status": None})
        counts = update["jobs_per_group"]
        group = str(op.job_group_id)
        counts[group] = counts.get(group, 0) + 1
        self._touch(BATCH_UPDATES.name, (op.batch_id, op.update_id))

    def _mark_ready(self, op: ops.MarkJobReady) -> None:
        job = self._job(op.batch_id, op.job_id)
        state = job["state"]
        if state == "Pending" and op.after_attempt_id is None:
            pass  # parents complete
        elif (state in ("Running", "Creating") and op.after_attempt_id is not None
              and op.after_attempt_id == job["current_attempt_id"]):
            job["current_attempt_id"] = None  # a retry: the current attempt ended, a new one will come
            self._record_retry(job, op)
        else:
            return  # a duplicate, or a stale retry of an attempt that is no longer current
        job["state"] = "Ready"
        job["time_ready"] = op.at
        job["not_before"] = op.not_before
        self._touch(JOBS.name, (op.batch_id, op.job_id))

    def _record_retry(self, job: dict[str, Any], op: ops.MarkJobReady) -> None:
        """The retry's decision on the attempt it retries, and what the job's next attempts ask for."""
        if op.memory_bytes is not None:
            job["memory_bytes"] = op.memory_bytes
        if op.preemptible is not None:
            job["preemptible"] = op.preemptible
        assert op.after_attempt_id is not None
        attempt_key = (op.batch_id, op.job_id, op.after_attempt_id)
        attempt = self.get(ATTEMPTS.name, attempt_key)
        if attempt is None or op.retry_rule is None:
            return  # a retry written before retries said why (JobBecameReady v1)
        decision: dict[str, Any] = {"rule": op.retry_rule, "cause": op.retry_cause, "not_before": op.not_before}
        if op.memory_bytes is not None:
            decision["memory_bytes"] = op.memory_bytes
        if op.preemptible is not None:
            decision["preemptible"] = op.preemptible
        attempt["retry"] = decision
        self._touch(ATTEMPTS.name, attempt_key)

    def _schedule_attempt(self, op: ops.ScheduleAttempt) -> None:
        job = self._job(op.batch_id, op.job_id)
        attempt_key = (op.batch_id, op.job_id, op.attempt_id)
        attempt = self.get(ATTEMPTS.name, attempt_key)
        # the worker may report an attempt before the resolver's verdict on it is in the log (both
        # follow the same SJ): _end_attempt then recorded it unaccepted, without a scheduled_at
        accepted_before = attempt is not None and attempt["scheduled_at"] is not None
        fresh = job["state"] == "Ready" and not accepted_before
        booted = (not op.creating and job["state"] == "Creating" and job["current_attempt_id"] == op.attempt_id)
        if not (fresh or booted):
            return  # a re-delivered verdict: the job is past it
        job["state"] = "Creating" if op.creating else "Running"
        job["current_attempt_id"] = op.attempt_id
        if attempt is None:
            job["n_attempts"] += 1
            self._insert(ATTEMPTS.name, attempt_key, _new_attempt(
                op.batch_id, op.job_id, op.attempt_id, op.instance_name, op.at,
                op.cores_mcpu if op.cores_mcpu is not None else job["cores_mcpu"],
                op.memory_bytes if op.memory_bytes is not None else job["memory_bytes"],
                op.storage_gib if op.storage_gib is not None else job["storage_gib"]))
        else:
            if not accepted_before:  # what the worker reported so far now belongs to the job
                job["n_attempts"] += 1
                attempt["scheduled_at"] = op.at
                job["start_time"] = attempt["start_time"]
                job["status"] = attempt["status"]
            attempt["instance_name"] = op.instance_name
            self._touch(ATTEMPTS.name, attempt_key)
        self._touch(JOBS.name, (op.batch_id, op.job_id))

    def _start_attempt(self, op: ops.StartAttempt) -> None:
        job = self._job(op.batch_id, op.job_id)
        attempt_key = (op.batch_id, op.job_id, op.attempt_id)
        attempt = self.get(ATTEMPTS.name, attempt_key)
        if attempt is None:
            return  # an attempt that was never accepted
        if attempt["start_time"] is None or op.started_at < attempt["start_time"]:
            attempt["start_time"] = op.started_at  # Hail keeps the earliest start
            self._touch(ATTEMPTS.name, attempt_key)
            self.ledger.settle(self, attempt_key, attempt, job)  # what it accrued runs from the new start
        if job["current_attempt_id"] == op.attempt_id and job["state"] in ("Running", "Creating"):
            job["start_time"] = attempt["start_time"]
            self._touch(JOBS.name, (op.batch_id, op.job_id))

    def _end_attempt(self, op: ops.EndAttempt) -> None:
        job = self._job(op.batch_id, op.job_id)
        attempt_key = (op.batch_id, op.job_id, op.attempt_id)
        attempt = self.get(ATTEMPTS.name, attempt_key)
        if attempt is None:  # reported without an accepted SJ: record it, it ran
            attempt = self._insert(ATTEMPTS.name, attempt_key, _new_attempt(
                op.batch_id, op.job_id, op.attempt_id, op.instance_name, None,
                job["cores_mcpu"], job["memory_bytes"], job["storage_gib"]))
        if attempt["end_time"] is not None:
            return  # already ended and billed
        if attempt["start_time"] is None:
            attempt["start_time"] = op.started_at
        status = {**op.status, "job_group_id": job["job_group_id"]}
        attempt.update(end_time=op.ended_at, outcome=op.outcome, exit_code=op.exit_code,
                       failure_cause=op.failure_cause, error=op.error, reason=op.failure_cause or "completed",
                       status=status)
        self._touch(ATTEMPTS.name, attempt_key)
        if job["current_attempt_id"] == op.attempt_id:
            job["status"] = status
            if job["start_time"] is None:
                job["start_time"] = attempt["start_time"]
        self._touch(JOBS.name, (op.batch_id, op.job_id))
        self.ledger.settle(self, attempt_key, attempt, job)  # billed start to end, whatever accrued before

    def _report_running(self, op: ops.ReportRunning) -> None:
        """The worker saw the attempt running at `at`: bill it up to then (Hail's billing update). Only an
        attempt that started and has not ended, on the instance that reports it, and only forwards."""
        attempt_key = (op.batch_id, op.job_id, op.attempt_id)
        attempt = self.get(ATTEMPTS.name, attempt_key)
        if (attempt is None or attempt["start_time"] is None or attempt["end_time"] is not None
                or attempt["instance_name"] != op.instance_name
                or (attempt["billed_until"] is not None and op.at <= attempt["billed_until"])):
            return
        attempt["billed_until"] = op.at
        self._touch(ATTEMPTS.name, attempt_key)
        self.ledger.settle(self, attempt_key, attempt, self._job(op.batch_id, op.job_id))

    def _complete_job(self, op: ops.CompleteJob) -> None:
        job = self._job(op.batch_id, op.job_id)
        if job["state"] in COMPLETE_STATES:
            return
        if op.state not in _COUNTER:
            raise UnprojectableEvent(f"job {op.batch_id}/{op.job_id}: completion state {op.state!r} is not one "
                                     f"of {sorted(_COUNTER)}")
        # the core's fences: JobCancelled ends a job without an attempt (Pending or Ready); JobCompleted
        # the job whose current attempt it names (a verdict that lost to a retry of that attempt: nothing)
        if op.attempt_id is None:
            if job["state"] in ("Running", "Creating") and job["current_attempt_id"] is not None:
                self._end_refused_attempt(job, op)
            elif job["state"] not in ("Pending", "Ready"):
                return
        elif job["state"] not in ("Running", "Creating") or job["current_attempt_id"] != op.attempt_id:
            return
        attempt = (self.get(ATTEMPTS.name, (op.batch_id, op.job_id, op.attempt_id))
                   if op.attempt_id is not None else None)
        end = attempt["end_time"] if attempt is not None and attempt["end_time"] is not None else op.at
        job.update(state=op.state, exit_code=op.exit_code, reason=op.reason, end_time=end,
                   n_attempts=max(job["n_attempts"], op.n_attempts or 0),
                   current_attempt_id=op.attempt_id or job["current_attempt_id"],
                   duration_ms=None if job["start_time"] is None else max(0, end - job["start_time"]))
        self._touch(JOBS.name, (op.batch_id, op.job_id))
        counter = _COUNTER[op.state]
        for ancestor in self._group(op.batch_id, job["job_group_id"])["ancestor_ids"]:
            group = self._group(op.batch_id, ancestor)
            group["n_completed"] += 1
            group[counter] += 1
            if group["n_completed"] >= group["n_jobs"]:
                group["state"] = "complete"
                group["time_completed"] = op.at
            self._touch(JOB_GROUPS.name, (op.batch_id, ancestor))
        batch = self._batch(op.batch_id)
        batch["n_completed"] += 1
        batch[counter] += 1
        if batch["n_completed"] >= batch["n_jobs"] and batch["state"] != "complete":
            batch["state"] = "complete"
            batch["time_completed"] = op.at
        self._touch(BATCHES.name, (op.batch_id,))

    def _end_refused_attempt(self, job: dict[str, Any], op: ops.CompleteJob) -> None:
        """JobCancelled met a job with an attempt: an attempt taken where its decision landed, from a
        log written before verdicts (with verdicts an attempt appears only once the core accepted it,
        and the core cancels only jobs without one). The core refused it, as it raced the
        cancellation, and no worker got it: end it as Hail's unschedule_job does, reason `cancelled`,
        nothing billed; the job no longer points at it. An attempt row this batch of ops did not load
        is ended by the sink (`ended_attempts`), so the result does not depend on how the log is cut."""
        key = (op.batch_id, op.job_id, job["current_attempt_id"])
        job["current_attempt_id"] = None
        attempt = self.get(ATTEMPTS.name, key)
        if attempt is None:
            self.ended_attempts.append((*key, op.at))
        elif attempt["end_time"] is None:
            attempt["end_time"] = op.at
            attempt["reason"] = "cancelled"
            self._touch(ATTEMPTS.name, key)

    def _record_audit(self, op: ops.RecordAudit) -> None:
        self.audit.append(op)

    def _record_pool_decision(self, op: ops.RecordPoolDecision) -> None:
        self.pool_decisions.append(op)

    # --- instances --------------------------------------------------------------------------
    def _upsert_instance(self, op: ops.UpsertInstance) -> None:
        key = (op.name,)
        row = self.get(INSTANCES.name, key)
        if row is None:
            # heartbeats have a topic of their own, so one may be folded before the instance's first
            # event: the instance exists (pending) and its other events fill in the rest
            row = self._insert(INSTANCES.name, key, {c: None for c in INSTANCES.columns})
            row.update(name=op.name, state=op.state or "pending")
            advances = op.state is not None
        else:
            advances = op.state is not None and _INSTANCE_RANK[op.state] > _INSTANCE_RANK[row["state"]]
            self._touch(INSTANCES.name, key)
        if advances:
            row["state"] = op.state
        for column, value in op.values:
            if advances or row[column] is None:  # an older event only fills gaps
                row[column] = value
        if op.heartbeat_at is not None and (row["last_heartbeat"] is None or op.heartbeat_at > row["last_heartbeat"]):
            row["last_heartbeat"] = op.heartbeat_at


def _new_group(batch_id: int, group_id: int, parent: int | None, ancestors: list[int], update_id: int | None,
               attributes: dict[str, str], callback: str | None, cancel_after: int | None, at: int) -> dict[str, Any]:
    return {"batch_id": batch_id, "job_group_id": group_id, "parent_job_group_id": parent,
            "ancestor_ids": ancestors, "update_id": update_id, "attributes": attributes, "callback": callback,
            "cancel_after_n_failures": cancel_after, "time_created": at, "cancelled": False, "state": "complete",
            "n_jobs": 0, "n_completed": 0, "n_succeeded": 0, "n_failed": 0, "n_cancelled": 0,
            "time_completed": None, "msec_mcpu": 0, "cost": 0.0, "cost_breakdown": {}, "usage": {}}


def _new_attempt(batch_id: int, job_id: int, attempt_id: str, instance: str, scheduled_at: int | None,
                 cores_mcpu: int, memory_bytes: int, storage_gib: int) -> dict[str, Any]:
    return {"batch_id": batch_id, "job_id": job_id, "attempt_id": attempt_id, "instance_name": instance,
            "scheduled_at": scheduled_at, "start_time": None, "end_time": None, "outcome": None,
            "exit_code": None, "failure_cause": None, "error": None, "reason": None, "cores_mcpu": cores_mcpu,
            "memory_bytes": memory_bytes, "storage_gib": storage_gib, "msec_mcpu": 0, "cost": 0.0,
            "billed_until": None, "billed_ms": 0, "status": None, "retry": None}


_APPLY: dict[type, Any] = {
    ops.CreateBatch: ReadModel._create_batch,
    ops.CreateUpdate: ReadModel._create_update,
    ops.CommitUpdate: ReadModel._commit_update,
    ops.CreateJobGroup: ReadModel._create_group,
    ops.CancelJobGroup: ReadModel._cancel_group,
    ops.DeleteBatch: ReadModel._delete_batch,
    ops.CompleteBatch: ReadModel._complete_batch,
    ops.CreateJob: ReadModel._create_job,
    ops.MarkJobReady: ReadModel._mark_ready,
    ops.ScheduleAttempt: ReadModel._schedule_attempt,
    ops.StartAttempt: ReadModel._start_attempt,
    ops.EndAttempt: ReadModel._end_attempt,
    ops.ReportRunning: ReadModel._report_running,
    ops.CompleteJob: ReadModel._complete_job,
    ops.RecordAudit: ReadModel._record_audit,
    ops.UpsertInstance: ReadModel._upsert_instance,
    ops.RecordPoolDecision: ReadModel._record_pool_decision,
}
