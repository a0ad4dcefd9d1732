"""squall's cost endpoint: an estimate before running (services/front/estimate.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.front.billing import project_cost
from services.front.errors import Forbidden
from services.front.estimate import estimate, parse_estimate
from services.front.http import Deps, User, json_request_body, parsed_body
from services.front.users import is_member

router = APIRouter(prefix="/api/v1alpha", tags=["cost"])

_BODY = {"type": "object", "required": ["batch", "bunch", "duration_s"], "properties": {
    "batch": {"type": "object", "description": "as for create-fast"},
    "bunch": {"type": "array", "items": {"type": "object"}, "description": "job specs, as for create-fast"},
    "job_groups": {"type": "array", "items": {"type": "object"}},
    "duration_s": {"type": "number", "minimum": 0, "description": "seconds each job is expected to run"},
    "job_durations_s": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                        "description": "per job id (as in the bunch): seconds, instead of duration_s"}}}


@router.post("/batches/estimate", openapi_extra=json_request_body(_BODY, "a create-fast body and a duration"))
async def estimate_batch(request: Request, user: User, deps: Deps) -> dict[str, Any]:
    """What the batch would cost: requested resources x duration, priced per Hail resource. Appends nothing."""
    wanted = await parsed_body(request, deps, lambda body: parse_estimate(body, deps.rules))
    answer = await deps.cpu.run_if(len(wanted.jobs) > 64, lambda: estimate(wanted, deps.pricing))
    project = wanted.batch.billing_project
    async with deps.pool.connection() as conn:
        if not await is_member(conn, user, project):
            raise Forbidden(f"unknown billing project {project!r} for user {user!r}; "
                            "use one you are a member of (GET /api/v1alpha/billing_projects)")
        spent = await project_cost(conn, project)
    limit = spent.limit if spent is not None else None
    accrued = spent.accrued_cost if spent is not None else 0.0
    answer["billing_project"] = {
        "billing_project": project, "limit": limit, "accrued_cost": accrued,
        "remaining": None if limit is None else max(0.0, limit - accrued),
        "within_limit": limit is None or accrued + answer["cost"] < limit}
    return answer
