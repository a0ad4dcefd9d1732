"""Hail's small endpoints (regions, cloud, billing projects, health, version) and squall's own
(a job's audit trail, and why it is not running)."""

from __future__ import annotations

from importlib.metadata import version as dist_version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from services.front.errors import NotFound
from services.front.http import BatchId, Deps, JobId, User
from services.front.users import billing_projects_of
from services.front.why import explain

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
    async with deps.pool.connection() as conn:
        for project in await billing_projects_of(conn, user):
            if project["billing_project"] == billing_project:
                return project
    raise NotFound(f"billing project {billing_project!r} not found (or you are not a member)")


@router.get("/api/v1alpha/squall/batches/{batch_id}/jobs/{job_id}/audit", tags=["squall"])
async def audit(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, Any]:
    """The job's events in log order, with topic/partition/offset (from the audit projection)."""
    return {"batch_id": batch_id, "job_id": job_id, "events": await deps.reads.audit(user, batch_id, job_id)}


@router.get("/api/v1alpha/squall/batches/{batch_id}/jobs/{job_id}/why", tags=["squall"])
async def why(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, Any]:
    """Why the job is (not) running: the scheduler's latest explanation, or one from the job's state."""
    row = await deps.reads.job_row(user, batch_id, job_id)
    explanation = await deps.reads.explanation(batch_id, job_id)
    parents = await deps.reads.parent_states(batch_id, list(row["parent_ids"])) if row["state"] == "Pending" else {}
    return {"batch_id": batch_id, "job_id": job_id, "state": row["state"],
            **explain(row, explanation, parents, deps.clock())}
