"""A job's "why is it (not) running" answer: the scheduler's explanation, or one from its state.

Reason codes are the core's (`events.core.explain.Reason`) where one applies, so the API, the
metrics and the scheduler speak the same words. A Ready job also gets what the autoscaler last
decided for its pool (`autoscaler`): whether it is bringing up instances, or a limit holds the pool,
or the job lies beyond its look-ahead window (`events.core.autoscale_explain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.core.autoscale import PoolConfig
from events.core.autoscale_explain import describe_pool_decision, waiting_on_pool, zone_summary
from events.core.explain import Reason, describe
from events.core.pool_fit import misfit
from events.core.resources import pool_name
from services.front.shapes import time_str

_COMPLETE = ("Success", "Failed", "Error", "Cancelled")


def explain(job: dict[str, Any], scheduler: dict[str, Any] | None, parent_states: dict[int, str],
            now_ms: int, pools: Sequence[PoolConfig] = (), retries: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """{reason_code, message, source}: source is 'scheduler' or 'state'. `pools`: those the autoscaler
    reads; a waiting job no worker of theirs can hold is told so, whatever else it waits for.
    `retries`: the job's attempts' retry decisions (shapes.retry_shown), oldest first."""
    state = job["state"]
    if state in ("Pending", "Ready"):
        problem = _misfit(job, pools)
        if problem is not None:
            return _state(Reason.NO_POOL_FITS.value, describe(Reason.NO_POOL_FITS, {"misfit": problem}))
    if state in _COMPLETE:
        detail = f" with exit code {job['exit_code']}" if job["exit_code"] is not None else ""
        return _state("complete", f"the job finished as {state}{detail}"
                      + (f": {job['reason']}" if job["reason"] else ""))
    if state == "Pending":
        waiting = sorted(p for p, s in parent_states.items() if s not in _COMPLETE)
        shown = ", ".join(str(p) for p in waiting[:10]) + (" ..." if len(waiting) > 10 else "")
        return _state(Reason.WAITING_FOR_PARENTS.value,
                      f"waiting for {len(waiting)} parent job(s) to complete: {shown}" if waiting
                      else "all parents are complete; the job becomes Ready momentarily")
    if state in ("Running", "Creating"):
        return _state("running" if state == "Running" else Reason.CREATING.value,
                      f"attempt {job['current_attempt_id']} is {state.lower()}")
    if scheduler is not None:
        return {"reason_code": scheduler["reason_code"], "message": scheduler["message"],
                "updated_at": time_str(scheduler["updated_at"]), "source": "scheduler"}
    not_before = job.get("not_before")
    if not_before is not None and not_before > now_ms:
        why = retries[-1]["message"] if retries else "retrying after a system failure"
        return _state(Reason.BACKOFF.value, f"{why}; not before {time_str(not_before)} (backoff)")
    return _state("waiting_for_scheduler", "the job is Ready; the scheduler has not considered it yet")


def _misfit(job: dict[str, Any], pools: Sequence[PoolConfig]) -> str | None:
    if not pools:
        return None
    resources = (job.get("spec") or {}).get("resources") or {}
    machine_type = resources.get("machine_type") if isinstance(resources, dict) else None
    return misfit(job["cores_mcpu"], job["memory_bytes"], job["storage_gib"], job["worker_type"] or "standard",
                  bool(job["preemptible"]), pools, machine_type)


def _state(code: str, message: str) -> dict[str, Any]:
    return {"reason_code": code, "message": message, "source": "state"}


def job_pool(job: dict[str, Any]) -> str | None:
    """The pool a job's attempts run in (None for a job-private machine type, which has no pool)."""
    resources = ((job.get("spec") or {}).get("resources") or {})
    if resources.get("machine_type") or not job.get("worker_type"):
        return None
    return pool_name(job["worker_type"], bool(job["preemptible"]))


def autoscaler_context(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the autoscaler last decided for the job's pool (a pool_decisions row), for a job that waits."""
    if decision is None:
        return None
    d = decision["decision"]
    keys = ("requested", "standing_requested", "deleted", "limited_by", "demand_mcpu", "ready_mcpu", "live",
            "pending", "min_instances", "max_live_instances", "max_instances", "window_ms")
    return {"pool": decision["pool"], "decided_at": time_str(decision["occurred_at"]), "waiting": waiting_on_pool(d),
            "decision": describe_pool_decision(d), "zones": zone_summary(d), **{k: d[k] for k in keys}}
