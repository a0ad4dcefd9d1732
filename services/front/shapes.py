"""Hail's JSON shapes for batches, job groups, jobs and attempts, built from table rows.

Times are stored as int ms and shown as Hail does: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events.core.retries import describe_retry


def time_str(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def humanize_ms(ms: int | None) -> str | None:
    """A short human duration like Hail's ('3s', '2m 5s', '1h 2m')."""
    if ms is None:
        return None
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{int(seconds)}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def cost_breakdown(by_resource: dict[str, float] | None) -> list[dict[str, Any]]:
    return [{"resource": k, "cost": v} for k, v in sorted((by_resource or {}).items())]


def derived_state(*, n_failed: int, cancelled: bool, n_cancelled: int, complete: bool) -> str:
    """Hail's order: failure, cancelled, success, running."""
    if n_failed > 0:
        return "failure"
    if cancelled or n_cancelled > 0:
        return "cancelled"
    return "success" if complete else "running"


def batch_status(row: dict[str, Any]) -> dict[str, Any]:
    """`row`: front_batches columns joined with the read model's counters (None while not projected).

    n_jobs is the front's count of committed jobs, so a lagging projection can never make a batch
    look complete before its jobs are counted.
    """
    n_jobs = row["n_committed_jobs"]
    n_completed = row["n_completed"] or 0
    complete = n_completed >= n_jobs
    n_failed, n_cancelled = row["n_failed"] or 0, row["n_cancelled"] or 0
    cancelled = bool(row["cancelled"] or row["b_cancelled"])
    time_completed = row["time_completed"] if complete else None
    duration_ms = time_completed - row["time_created"] if time_completed is not None else None
    return {
        "id": row["batch_id"],
        "user": row["user_name"],
        "billing_project": row["billing_project"],
        "token": row["token"],
        "state": derived_state(n_failed=n_failed, cancelled=cancelled, n_cancelled=n_cancelled, complete=complete),
        "complete": complete,
        "closed": True,
        "n_jobs": n_jobs,
        "n_completed": n_completed,
        "n_succeeded": row["n_succeeded"] or 0,
        "n_failed": n_failed,
        "n_cancelled": n_cancelled,
        "time_created": time_str(row["time_created"]),
        "time_closed": time_str(row["time_closed"]),
        "time_completed": time_str(time_completed),
        "duration_ms": duration_ms,
        "duration": humanize_ms(duration_ms),
        "msec_mcpu": row["msec_mcpu"] or 0,
        "cost": row["cost"] or 0.0,
        "cost_breakdown": cost_breakdown(row["cost_breakdown"]),
        "attributes": row["attributes"] or {},
    }


def job_group_status(batch_id: int, job_group_id: int, row: dict[str, Any] | None, cancelled: bool,
                     time_created: int) -> dict[str, Any]:
    """`row` is the read model's job_groups row, or None while the group is not projected yet."""
    r = row or {}
    n_jobs, n_completed = r.get("n_jobs", 0), r.get("n_completed", 0)
    complete = n_completed >= n_jobs
    time_completed = r.get("time_completed") if complete else None
    created = r.get("time_created", time_created)
    return {
        "batch_id": batch_id,
        "job_group_id": job_group_id,
        "state": derived_state(n_failed=r.get("n_failed", 0), cancelled=cancelled or r.get("cancelled", False),
                               n_cancelled=r.get("n_cancelled", 0), complete=complete),
        "complete": complete,
        "n_jobs": n_jobs,
        "n_completed": n_completed,
        "n_succeeded": r.get("n_succeeded", 0),
        "n_failed": r.get("n_failed", 0),
        "n_cancelled": r.get("n_cancelled", 0),
        "time_created": time_str(created),
        "time_completed": time_str(time_completed),
        "duration": None if time_completed is None else time_completed - created,
        "cost": r.get("cost", 0.0),
        "cost_breakdown": cost_breakdown(r.get("cost_breakdown")),
        "attributes": r.get("attributes") or {},
    }


def job_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": row["batch_id"],
        "job_id": row["job_id"],
        "job_group_id": row["job_group_id"],
        "name": row["name"],
        "user": row["user"],
        "billing_project": row["billing_project"],
        "state": row["state"],
        "exit_code": row["exit_code"],
        "end_time": time_str(row["end_time"]),
        "duration": row["duration_ms"],
        "cost": row["cost"],
        "msec_mcpu": row["msec_mcpu"],
        "cost_breakdown": cost_breakdown(row["cost_breakdown"]),
        "always_run": row["always_run"],
        "n_max_attempts": row["n_max_attempts"],
        "display_state": None,
    }


def job_status(row: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    spec = dict(row["spec"] or {})
    spec.setdefault("n_max_attempts", row["n_max_attempts"])
    spec.setdefault("always_run", row["always_run"])
    return {**job_entry(row), "spec": spec, "attributes": row["attributes"] or {}, "status": status,
            "inst_coll": row["worker_type"], "retry_policy": row.get("retry_policy")}


def attempt_entry(row: dict[str, Any]) -> dict[str, Any]:
    start, end = row["start_time"], row["end_time"]
    duration_ms = end - start if start is not None and end is not None else None
    return {
        "attempt_id": row["attempt_id"],
        "instance_name": row["instance_name"],
        "start_time": time_str(start),
        "start_time_ms": start,
        "end_time": time_str(end),
        "end_time_ms": end,
        "duration": humanize_ms(duration_ms),
        "duration_ms": duration_ms,
        "reason": row["reason"],
        # squall's: what the attempt had, and the retry decided after it (events/core/retries.py)
        "cores_mcpu": row.get("cores_mcpu"),
        "memory_bytes": row.get("memory_bytes"),
        "storage_gib": row.get("storage_gib"),
        "retry": retry_shown(row),
    }


def retry_shown(row: dict[str, Any]) -> dict[str, Any] | None:
    """An attempt's retry decision with its words, or None if it was not retried."""
    decision = row.get("retry")
    if not decision:
        return None
    message = describe_retry(decision["rule"], decision.get("cause"), exit_code=row.get("exit_code"),
                             memory_bytes=decision.get("memory_bytes"), previous_memory_bytes=row.get("memory_bytes"),
                             preemptible=decision.get("preemptible"))
    return {**decision, "message": message}
