"""Hail's small endpoints (regions, cloud, billing projects and limits, health, version) and squall's own
(a job's audit trail, and why it is not running)."""

from __future__ import annotations

from importlib.metadata import version as dist_version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from services.front import openapi_schemas as schemas
from services.front.billing import billing_projects as query_billing_projects
from services.front.billing import parse_limit, set_limit
from services.front.errors import Forbidden, InvalidRequest, NotFound
from services.front.fields import require_object
from services.front.http import BatchId, Deps, JobId, User, json_body, json_request_body
from services.front.users import billing_projects_of, is_operator
from services.front.why import autoscaler_context, explain, job_pool

router = APIRouter(tags=["meta"])


@router.get("/healthcheck")
async def healthcheck() -> dict[str, str]:
    return {}


@router.get("/api/v1alpha/version", response_class=PlainTextResponse)
async def version() -> str:
    return dist_version("squall")


@router.get("/api/v1alpha/supported_regions")
async def supported_regions(user: User, deps: Deps) -> list[str]:
    return list(deps.rules.supported_regions)


@router.get("/api/v1alpha/default_region", response_class=PlainTextResponse)
async def default_region(user: User, deps: Deps) -> str:
    return deps.default_region


@router.get("/api/v1alpha/cloud", response_class=PlainTextResponse)
async def cloud(user: User, deps: Deps) -> str:
    return deps.cloud


@router.get("/api/v1alpha/billing_projects")
async def billing_projects(user: User, deps: Deps) -> list[dict[str, Any]]:
    async with deps.pool.connection() as conn:
        return await billing_projects_of(conn, user)


@router.get("/api/v1alpha/billing_projects/{billing_project}")
async def billing_project(billing_project: str, user: User, deps: Deps) -> dict[str, Any]:
    """Hail's shape: `{billing_project, users, status, limit, accrued_cost}`. accrued_cost lags
    running jobs: the read model bills an attempt when it ends (services/front/billing.py)."""
    async with deps.pool.connection() as conn:
        member = None if await is_operator(conn, user) else user
        found = await query_billing_projects(conn, member, billing_project)
    if not found:
        raise NotFound(f"billing project {billing_project!r} not found (or you are not a member)")
    return found[0]


@router.post("/api/v1alpha/billing_limits/{billing_project}/edit",
             openapi_extra=json_request_body(schemas.BILLING_LIMIT, "the new limit in USD, or null for none"))
async def edit_billing_limit(billing_project: str, request: Request, user: User, deps: Deps) -> dict[str, Any]:
    """Set a project's limit (Hail's endpoint; operators only, 403 for others)."""
    async with deps.pool.connection() as conn:
        if not await is_operator(conn, user):
            raise Forbidden(f"only operators may edit billing limits; {user!r} is not one")
    body = require_object("body", await json_body(request, deps.max_body_bytes))
    if "limit" not in body:
        raise InvalidRequest("limit", "is required: a number of USD, or null to remove the limit")
    limit = parse_limit(body["limit"])
    async with deps.pool.connection() as conn:
        await set_limit(conn, billing_project, limit)
    return {"billing_project": billing_project, "limit": limit}


@router.get("/api/v1alpha/squall/batches/{batch_id}/jobs/{job_id}/audit", tags=["squall"])
async def audit(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, Any]:
    """The job's events in log order, with topic/partition/offset (from the audit projection)."""
    return {"batch_id": batch_id, "job_id": job_id, "events": await deps.reads.audit(user, batch_id, job_id)}


@router.get("/api/v1alpha/squall/batches/{batch_id}/jobs/{job_id}/why", tags=["squall"])
async def why(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, Any]:
    """Why the job is (not) running: the scheduler's latest explanation, or one from the job's state; why
    each of its attempts that was retried was (`retries`: rule, cause, what changed, in words); for a Ready
    job also the autoscaler's last decision for its pool (`autoscaler`, null if it has made none)."""
    row = await deps.reads.job_row(user, batch_id, job_id)
    explanation = await deps.reads.explanation(batch_id, job_id)
    parents = await deps.reads.parent_states(batch_id, list(row["parent_ids"])) if row["state"] == "Pending" else {}
    retries = [{"attempt_id": a["attempt_id"], **a["retry"]} for a in await deps.reads.attempts(user, batch_id, job_id)
               or () if a["retry"] is not None]
    answer = {"batch_id": batch_id, "job_id": job_id, "state": row["state"],
              **explain(row, explanation, parents, deps.clock(), deps.rules.pools, retries), "retries": retries}
    pool = job_pool(row) if row["state"] == "Ready" else None
    if pool is not None:
        answer["autoscaler"] = autoscaler_context(await deps.reads.pool_decision(pool))
    return answer
