"""Hail's `/api/v2alpha` listings: batches and jobs filtered with the v2 query language.

The answers have the v1 listings' shapes (`{batches, last_batch_id?}`, `{jobs, last_job_id}`);
only `q` differs (services.front.query_v2). A query that does not parse is a 400 naming the line
and the term. `hailtop`'s `list_batches(..., version=2)` and `jobs(q, version=2)` call these.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.front.queries import default_batches_query
from services.front.route_support import BatchId, Deps, JobGroupId, User, parse_bool_param
from services.front.specs import ROOT_JOB_GROUP_ID

router = APIRouter(prefix="/api/v2alpha", tags=["v2"])

Q = Annotated[str | None, Query(description="a v2 query: one term per line, all must hold")]
LastJobId = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


@router.get("/batches")
async def list_batches(
    user: User, deps: Deps, q: Q = None,
    last_batch_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Newest first; without q, the caller's batches (`user = NAME`); page with last_batch_id."""
    return await deps.reads.batches(user, q if q is not None else default_batches_query(user, 2), last_batch_id,
                                    limit, version=2)


@router.get("/batches/{batch_id}/jobs")
async def list_jobs(batch_id: BatchId, user: User, deps: Deps, q: Q = None, last_job_id: LastJobId = None,
                    recursive: str | None = None) -> dict[str, Any]:
    """Jobs of the root group (recursive=true: of the whole batch), by job id, 50 a page."""
    return await deps.reads.jobs(user, batch_id, ROOT_JOB_GROUP_ID, q or "", last_job_id,
                                 parse_bool_param("recursive", recursive, False), version=2)


@router.get("/batches/{batch_id}/job-groups/{job_group_id}/jobs")
async def list_group_jobs(batch_id: BatchId, job_group_id: JobGroupId, user: User, deps: Deps, q: Q = None,
                          last_job_id: LastJobId = None, recursive: str | None = None) -> dict[str, Any]:
    return await deps.reads.jobs(user, batch_id, job_group_id, q or "", last_job_id,
                                 parse_bool_param("recursive", recursive, False), version=2)
