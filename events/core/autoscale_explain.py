"""The autoscaler's decisions in words (pure): what a pool got, and which rule or limit decided it.

The input is a PoolScalingDecided event as a dict (its Avro fields, as the read model stores it),
so the UI, `squall audit --pool`, and the API's "why" of a waiting job say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LIMIT_WORDS = {
    "max_live_instances": "the pool is at max_live_instances ({max_live_instances} pending or active)",
    "max_instances": "the pool is at max_instances ({max_instances} not yet deleted, deactivated ones included)",
    "max_new_per_loop": "at most max_new_per_loop ({max_new_per_loop}) new instances per loop",
}


def _cores(mcpu: int) -> str:
    return f"{mcpu / 1000:g}"


def describe_pool_decision(d: Mapping[str, Any]) -> str:
    """One paragraph: the action, then the numbers that led to it."""
    parts = [_action(d)]
    at_least = "at least " if d.get("demand_truncated") else ""
    window_s = int(d["window_ms"]) // 1000
    parts.append(
        f"look-ahead demand {at_least}{_cores(d['demand_mcpu'])} of {_cores(d['ready_mcpu'])} ready cores "
        f"(the jobs the scheduler reaches in {window_s} s); free {_cores(d['free_mcpu'])}, booting "
        f"{_cores(d['pending_mcpu'])}; {d['live']} live ({d['pending']} booting), {d['inactive']} deactivated; "
        f"limits: min {d['min_instances']}, max live {d['max_live_instances']}, max {d['max_instances']}"
    )
    if d.get("limited_by"):
        parts.append("held back: " + LIMIT_WORDS.get(d["limited_by"], d["limited_by"]).format(**d))
    if d.get("paused_until"):
        parts.append("the provider refused a creation; the pool asks again later")
    return "; ".join(parts)


def _action(d: Mapping[str, Any]) -> str:
    done = []
    if d["requested"]:
        done.append(f"requested {d['requested']} worker(s) of {d['worker_cores']} cores for the ready jobs")
    if d["standing_requested"]:
        done.append(f"requested {d['standing_requested']} standing worker(s) of {d['standing_worker_cores']} "
                    f"cores to keep min_instances {d['min_instances']}")
    if d["deleted"]:
        done.append(f"deleted {d['deleted']} idle instance(s)")
    if not done:
        return "no change"
    zones = {c["zone"] for c in d.get("instances", ()) if c.get("zone")}
    if zones:
        done.append("in zone(s) " + ", ".join(sorted(zones)))
    return ", ".join(done)


def zone_summary(d: Mapping[str, Any]) -> str:
    """The zones' weights: successes / attempts of their recent creations, and the weight that follows."""
    return ", ".join(f"{z['zone']}: {z['successes']}/{z['attempts']} ok, weight {z['weight']:.2f}"
                     for z in d.get("zones", ()))


def waiting_on_pool(d: Mapping[str, Any]) -> str:
    """For a Ready job of this pool: what the autoscaler is doing about it."""
    if d.get("limited_by") in ("max_live_instances", "max_instances"):
        return ("the autoscaler cannot add instances: " + LIMIT_WORDS[d["limited_by"]].format(**d)
                + "; the job waits for running jobs to finish")
    if d["requested"] or d["pending"]:
        return (f"the autoscaler is bringing up capacity ({d['pending']} instance(s) booting) for the ready jobs "
                f"within its {int(d['window_ms']) // 1000} s look-ahead")
    if d["ready_mcpu"] > d["demand_mcpu"]:
        return ("the job is beyond the autoscaler's look-ahead window (it buys instances for the jobs the "
                "scheduler reaches within the window); it runs as the jobs ahead of it start")
    return "the pool has room for the ready jobs; the scheduler places them as capacity frees up"
