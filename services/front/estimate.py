"""What a batch would cost before it runs: requested resources x a duration the user gives.

`POST /api/v1alpha/batches/estimate` takes the body `create-fast` takes (`batch`, `bunch`,
`job_groups`: checked exactly as a submit checks them, so a spec that would be refused is refused
here too) plus how long the jobs will run:

    {"batch": {...}, "bunch": [...], "job_groups": [], "duration_s": 600,
     "job_durations_s": {"3": 3600}}        # optional: per job (update-relative id), overrides duration_s

and appends nothing. Each job is priced as the read model bills an attempt that ran that long on
what it requested (Hail's resources and the deployment's price table, projections/cost.py): one
attempt per job, no retries, no time waiting for a worker. The answer has Hail's `cost` and
`cost_breakdown` shape, per job and in total, and the billing project's limit and accrued cost, so a
client can see whether the batch fits what is left. A bigger batch is estimated bunch by bunch
(1,024 specs per request, as submits) and the answers added up (events/client.py does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from projections.cost import Pricing, add_usage
from services.front.errors import InvalidRequest
from services.front.fields import require_object
from services.front.shapes import cost_breakdown
from services.front.specs import (
    BatchRequest,
    JobRequest,
    SpecRules,
    check_bunch_size,
    parse_batch,
    parse_groups,
    parse_jobs,
)

MAX_DURATION_S = 366 * 24 * 3600  # a year: longer is a typo, and would overflow nothing but sense
_FIELDS = ("batch", "bunch", "job_groups", "duration_s", "job_durations_s")


@dataclass(frozen=True, slots=True)
class EstimateRequest:
    batch: BatchRequest
    jobs: list[JobRequest]
    duration_ms: dict[int, int]  # update-relative job id -> ms it is expected to run


def parse_estimate(raw: Any, rules: SpecRules) -> EstimateRequest:
    body = require_object("body", raw)
    unknown = sorted(k for k in body if k not in _FIELDS)
    if unknown:
        raise InvalidRequest(unknown[0], f"unknown field; allowed: {', '.join(_FIELDS)}")
    groups, jobs = body.get("job_groups") or [], body.get("bunch") or []
    check_bunch_size("bunch", jobs, groups)
    batch = parse_batch(body.get("batch"), rules.callbacks)
    parse_groups(groups, callbacks=rules.callbacks)  # checked as a submit checks them; costless themselves
    parsed = parse_jobs(jobs, rules)
    if "duration_s" not in body:
        raise InvalidRequest("duration_s", "is required: how many seconds each job is expected to run")
    default = _duration_ms("duration_s", body["duration_s"])
    overrides = body.get("job_durations_s") or {}
    if not isinstance(overrides, dict):
        raise InvalidRequest("job_durations_s", "must be an object of job id -> seconds")
    ids = {job.job_id for job in parsed}
    durations = {job.job_id: default for job in parsed}
    for key, value in overrides.items():
        field = f"job_durations_s.{key}"
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and int(key) in ids):
            raise InvalidRequest(field, "names no job of the bunch (use the jobs' job_id)")
        durations[int(key)] = _duration_ms(field, value)
    return EstimateRequest(batch, parsed, durations)


def _duration_ms(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= MAX_DURATION_S:
        raise InvalidRequest(field, f"must be a number of seconds from 0 to {MAX_DURATION_S}, got {value!r}")
    return round(value * 1000)


def estimate(request: EstimateRequest, pricing: Pricing) -> dict[str, Any]:
    """The estimate's answer (without the billing project's part, which needs the database)."""
    total: dict[str, int] = {}
    msec_mcpu = 0
    jobs = []
    for job in request.jobs:
        r = job.spec.resources
        ms = request.duration_ms[job.job_id]
        usage = add_usage({}, pricing.quantities(r.cores_mcpu, r.memory_bytes, r.storage_gib, r.preemptible), ms)
        total = add_usage(total, tuple(usage.items()), 1)
        msec_mcpu += ms * r.cores_mcpu
        cost, breakdown = pricing.price(usage)
        jobs.append({"job_id": job.job_id, "name": job.attributes.get("name"), "duration_s": ms / 1000,
                     "cores_mcpu": r.cores_mcpu, "memory_bytes": r.memory_bytes, "storage_gib": r.storage_gib,
                     "preemptible": r.preemptible, "cost": cost, "cost_breakdown": cost_breakdown(breakdown)})
    cost, breakdown = pricing.price(total)
    return {"n_jobs": len(jobs), "msec_mcpu": msec_mcpu, "cost": cost, "cost_breakdown": cost_breakdown(breakdown),
            "jobs": jobs}
