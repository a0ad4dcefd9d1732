"""Why a job is not running yet: a reason code and a message a user can act on.

The matcher attaches one `Explanation` to every ready job a cycle does not place; the API's
"why is my job not scheduled" shows the latest one. Messages are formatted lazily (a cycle may
leave tens of thousands of jobs unplaced and only a few explanations are ever read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GIB = 1024**3


class Reason(StrEnum):
    """Stable reason codes (API and metrics use them); the wording of messages may change."""

    BACKOFF = "backoff"
    OVER_FAIR_SHARE = "over_fair_share"
    NO_CAPACITY = "no_capacity"
    POOL_AT_MAX = "pool_at_max"
    NO_INSTANCES = "no_instances"
    JOB_PRIVATE_REQUESTED = "job_private_requested"
    JOB_PRIVATE_LIMIT = "job_private_limit"
    WAITING_FOR_PARENTS = "waiting_for_parents"
    CREATING = "creating"
    NO_POOL_FITS = "no_pool_fits"


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """One unplaced job's reason. `detail` holds the numbers the message quotes."""

    batch_id: int
    job_id: int
    reason: Reason
    detail: tuple[tuple[str, Any], ...] = ()

    @property
    def message(self) -> str:
        return describe(self.reason, dict(self.detail))

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "message": self.message, **dict(self.detail)}


def describe(reason: Reason, detail: dict[str, Any]) -> str:
    """The human message for a reason code and its detail."""
    d = detail
    if reason is Reason.BACKOFF:
        return f"retrying after a system failure; not before {_iso(d['not_before_ms'])} (backoff)"
    if reason is Reason.OVER_FAIR_SHARE:
        return (
            f"user {d['user']} has used its fair share of pool {d['pool']} this cycle "
            f"({_cores(d['share_mcpu'])} cores); other users' jobs go first, and this job follows "
            "as running jobs finish"
        )
    if reason in (Reason.NO_CAPACITY, Reason.POOL_AT_MAX, Reason.NO_INSTANCES):
        need = (
            f"{_cores(d['cores_mcpu'])} cores, {d['memory_bytes'] / GIB:.1f} GiB memory"
            f" and {d['storage_gib']} GiB storage"
        )
        where = f"pool {d['pool']}" + (f" in regions {', '.join(d['regions'])}" if d.get("regions") else "")
        if reason is Reason.NO_INSTANCES:
            return f"no active instance in {where} yet; the autoscaler starts instances for ready jobs"
        if reason is Reason.POOL_AT_MAX:
            return (
                f"no instance in {where} has {need} free, and the pool is at its maximum number of "
                f"instances{_limit(d)}; the job waits for running jobs to finish"
            )
        return f"no instance in {where} has {need} free; the autoscaler adds instances for ready jobs"
    if reason is Reason.JOB_PRIVATE_REQUESTED:
        return f"a job-private instance ({d['machine_type']}) is requested for this job; it starts when the instance boots"
    if reason is Reason.JOB_PRIVATE_LIMIT:
        return (
            f"job-private instance requests are limited to {d['limit']} per scheduling cycle; "
            f"an instance ({d['machine_type']}) is requested in a later cycle"
        )
    if reason is Reason.WAITING_FOR_PARENTS:
        return f"waiting for {d['n_pending_parents']} parent job(s) to complete"
    if reason is Reason.CREATING:
        return f"waiting for its job-private instance ({d['machine_type']}) to boot"
    if reason is Reason.NO_POOL_FITS:
        return str(d["misfit"])  # events/core/pool_fit.py words it
    raise ValueError(f"no message for reason {reason!r}")


def waiting_for_parents(batch_id: int, job_id: int, n_pending_parents: int) -> Explanation:
    """For a Pending job (the matcher never sees it)."""
    return Explanation(
        batch_id=batch_id,
        job_id=job_id,
        reason=Reason.WAITING_FOR_PARENTS,
        detail=(("n_pending_parents", n_pending_parents),),
    )


def creating(batch_id: int, job_id: int, machine_type: str) -> Explanation:
    """For a Creating job: its job-private instance is booting."""
    return Explanation(
        batch_id=batch_id, job_id=job_id, reason=Reason.CREATING, detail=(("machine_type", machine_type),)
    )


def _limit(d: dict[str, Any]) -> str:
    """Which of the pool's limits binds, when the scheduler said (POOL_AT_MAX's `limit`, `limit_value`)."""
    if not d.get("limit"):
        return ""
    return f" ({d['limit']} = {d['limit_value']})" if d.get("limit_value") is not None else f" ({d['limit']})"


def _cores(mcpu: int) -> str:
    return f"{mcpu / 1000:g}"


def _iso(ms: int) -> str:
    # Formats a given instant (never reads the clock): YYYY-MM-DDTHH:MM:SS.mmmZ, as the API shows times.
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
