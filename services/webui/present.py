"""How read-model values look on a page: times, durations, sizes, costs, derived states.

Pure functions, registered as Jinja2 filters by the app; each accepts None (a column not yet set)
and renders it as an empty cell rather than failing the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events.core.retries import describe_retry

LIVE_JOB_STATES = frozenset({"Pending", "Ready", "Creating", "Running"})
TERMINAL_JOB_STATES = frozenset({"Success", "Failed", "Error", "Cancelled"})


def batch_state(batch: dict[str, Any]) -> str:
    """The API's derived batch state, in Hail's order: failure, cancelled, success, running."""
    if batch["n_failed"] > 0:
        return "failure"
    if batch["cancelled"] or batch["n_cancelled"] > 0:
        return "cancelled"
    if batch["state"] == "complete":
        return "success"
    return "running"


def timestamp(ms: int | None) -> str:
    """Milliseconds since the epoch as the API's UTC form, to the second (a table cell, not an audit)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def timestamp_ms(ms: int | None) -> str:
    """To the millisecond, for the audit trail and step timings where ordering matters."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def duration(ms: int | None) -> str:
    """A short human duration: 850ms, 12.3s, 4m 05s, 2h 03m, 3d 04h."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def elapsed(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None:
        return ""
    return duration(max(0, end_ms - start_ms))


def cost(dollars: float | None) -> str:
    if dollars is None:
        return ""
    if dollars and dollars < 0.0001:
        return "<$0.0001"
    return f"${dollars:.4f}"


def cores(mcpu: int | None) -> str:
    if mcpu is None:
        return ""
    return f"{mcpu / 1000:g}"


def size(n_bytes: int | None) -> str:
    """Binary units, as Hail's resource strings use them."""
    if n_bytes is None:
        return ""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_KINDS = {"compute": "CPU", "memory": "Memory", "disk": "Storage", "service-fee": "Service fee"}


def breakdown(by_resource: dict[str, float] | None) -> list[dict[str, Any]]:
    """A cost breakdown (Hail's resources) as rows: resource, what it is, cost, share of the total."""
    items = sorted((by_resource or {}).items())
    total = sum(v for _, v in items)
    rows = []
    for resource, dollars in items:
        kind = _KINDS.get(resource.split("/", 1)[0], resource.split("/", 1)[0])
        tier = ("preemptible" if "-preemptible/" in resource or "/preemptible/" in resource
                else "non-preemptible" if "nonpreemptible" in resource else "")
        rows.append({"resource": resource, "kind": f"{kind}, {tier}" if tier else kind, "cost": dollars,
                     "share": dollars / total if total > 0 else 0.0})
    return rows


def percent(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{100 * ratio:.0f}%"


def retry_words(attempt: dict[str, Any] | None) -> str:
    """Why an attempt (a row with its `retry` decision, exit code and memory) was retried, in words."""
    decision = (attempt or {}).get("retry")
    if not decision:
        return ""
    assert attempt is not None
    return describe_retry(decision["rule"], decision.get("cause"), exit_code=attempt.get("exit_code"),
                          memory_bytes=decision.get("memory_bytes"), previous_memory_bytes=attempt.get("memory_bytes"),
                          preemptible=decision.get("preemptible"))


def retry_policy(policy: dict[str, Any] | None) -> str:
    """A job's (or a batch's default) retry policy as the read model keeps it, in words."""
    if not policy:
        return ""
    parts = []
    if policy.get("oom_memory_multiplier") is not None:
        cap = policy.get("oom_max_memory_bytes")
        parts.append(f"out of memory: memory \u00d7 {policy['oom_memory_multiplier']:g}"
                     + (f" up to {size(cap)}" if cap is not None else ""))
    if policy.get("max_preemptions") is not None:
        parts.append(f"non-preemptible after {policy['max_preemptions']} preemption(s)")
    if policy.get("retry_exit_codes"):
        parts.append("exit codes " + ", ".join(str(c) for c in policy["retry_exit_codes"]) + " retried")
    return "; ".join(parts)


FILTERS = {
    "timestamp": timestamp,
    "timestamp_ms": timestamp_ms,
    "duration": duration,
    "cost": cost,
    "cores": cores,
    "size": size,
    "percent": percent,
    "breakdown": breakdown,
    "retry_words": retry_words,
    "retry_policy": retry_policy,
}
