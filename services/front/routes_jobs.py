"""Hail's job and job-group endpoints: listings, job status, attempts, logs, resource usage.

Logs, status documents and usage are read through the ObjectStore from squall's bucket, and a
running attempt's log from its worker's own endpoint (services/jobdata); never from a host path.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from events.objectstore import ObjectStoreError
from events.objectstore.layout import STEPS
from services.front.errors import InvalidRequest, NotFound, Unavailable
from services.front.route_support import BatchId, Deps, JobGroupId, JobId, User, parse_bool_param
from services.front.shapes import job_status
from services.front.specs import ROOT_JOB_GROUP_ID
from services.jobdata import AttemptLocation, locate

router = APIRouter(prefix="/api/v1alpha", tags=["jobs"])

LastJobId = Annotated[int | None, Query(ge=0, le=2**31 - 1)]
AttemptId = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/batches/{batch_id}/jobs")
async def list_jobs(batch_id: BatchId, user: User, deps: Deps, q: str = "", last_job_id: LastJobId = None,
                    recursive: str | None = None) -> dict[str, Any]:
    """Jobs of the root group (recursive=true: of the whole batch), by job id, 50 a page."""
    return await deps.reads.jobs(user, batch_id, ROOT_JOB_GROUP_ID, q, last_job_id,
                                 parse_bool_param("recursive", recursive, False))


@router.get("/batches/{batch_id}/job-groups/{job_group_id}/jobs")
async def list_group_jobs(batch_id: BatchId, job_group_id: JobGroupId, user: User, deps: Deps, q: str = "",
                          last_job_id: LastJobId = None, recursive: str | None = None) -> dict[str, Any]:
    return await deps.reads.jobs(user, batch_id, job_group_id, q, last_job_id,
                                 parse_bool_param("recursive", recursive, False))


@router.get("/batches/{batch_id}/job-groups")
async def list_root_children(batch_id: BatchId, user: User, deps: Deps,
                             last_job_group_id: LastJobId = None) -> dict[str, Any]:
    return await deps.reads.child_job_groups(user, batch_id, ROOT_JOB_GROUP_ID, last_job_group_id)


@router.get("/batches/{batch_id}/job-groups/{job_group_id}/job-groups")
async def list_child_groups(batch_id: BatchId, job_group_id: JobGroupId, user: User, deps: Deps,
                            last_job_group_id: LastJobId = None) -> dict[str, Any]:
    return await deps.reads.child_job_groups(user, batch_id, job_group_id, last_job_group_id)


@router.get("/batches/{batch_id}/job-groups/{job_group_id}")
async def get_job_group(batch_id: BatchId, job_group_id: JobGroupId, user: User, deps: Deps) -> dict[str, Any]:
    return await deps.reads.job_group(user, batch_id, job_group_id)


@router.get("/batches/{batch_id}/jobs/{job_id}")
async def get_job(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, Any]:
    """The job with its spec, attributes and worker status (while running: as of its last ended step)."""
    row = await deps.reads.job_row(user, batch_id, job_id)
    status = row["status"]
    if status is None and row["current_attempt_id"]:
        status = await _store(deps.job_data.status(batch_id, job_id, row["current_attempt_id"]))
    return job_status(row, status)


@router.get("/batches/{batch_id}/jobs/{job_id}/attempts")
async def get_attempts(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> list[dict[str, Any]] | None:
    return await deps.reads.attempts(user, batch_id, job_id)


@router.get("/batches/{batch_id}/jobs/{job_id}/log")
async def get_logs(batch_id: BatchId, job_id: JobId, user: User, deps: Deps) -> dict[str, str]:
    """The current attempt's logs, one string per step that started (deprecated in Hail, still used)."""
    row = await deps.reads.job_row(user, batch_id, job_id)
    attempt = row["current_attempt_id"]
    if attempt is None:
        return {}
    where = await _locate(deps, batch_id, job_id, attempt)
    out = {}
    for step in STEPS:
        log = await _store(deps.job_data.log(batch_id, job_id, attempt, step, where))
        if log is not None:
            out[step] = log.data.decode(errors="replace")
    return out


@router.get("/batches/{batch_id}/jobs/{job_id}/log/{container}", response_class=Response)
async def get_step_log(batch_id: BatchId, job_id: JobId, container: str, user: User, deps: Deps,
                       attempt_id: AttemptId = None) -> Response:
    """Raw bytes of one step's log; grows while the step runs."""
    attempt = await _attempt(deps, user, batch_id, job_id, container, attempt_id)
    where = await _locate(deps, batch_id, job_id, attempt)
    log = await _store(deps.job_data.log(batch_id, job_id, attempt, container, where))
    if log is None:
        raise NotFound(f"no {container} log for attempt {attempt} of job {batch_id}/{job_id}: the step has not "
                       "started (or never will)")
    return Response(content=log.data, media_type="application/octet-stream")


@router.get("/batches/{batch_id}/jobs/{job_id}/resource_usage")
async def get_resource_usage(batch_id: BatchId, job_id: JobId, user: User, deps: Deps,
                             attempt_id: AttemptId = None) -> dict[str, Any]:
    """Per step, a pandas "split" time series (time_msecs, memory_in_bytes, cpu_usage, io_storage_in_bytes)."""
    attempt = await _attempt(deps, user, batch_id, job_id, "main", attempt_id)
    out: dict[str, Any] = {}
    for step in STEPS:
        data = await _store(deps.job_data.resource_usage(batch_id, job_id, attempt, step))
        if data is None:
            continue
        try:
            out[step] = json.loads(data)
        except ValueError:
            continue  # not the worker's document; nothing to plot
    return out


async def _attempt(deps: Deps, user: str, batch_id: int, job_id: int, container: str,
                   attempt_id: str | None) -> str:
    if container not in STEPS:
        raise InvalidRequest("container", f"{container!r} is not a step; use one of {', '.join(STEPS)}")
    row = await deps.reads.job_row(user, batch_id, job_id)
    if attempt_id is None:
        if row["current_attempt_id"] is None:
            raise NotFound(f"job {batch_id}/{job_id} has no attempt yet (state {row['state']})")
        return str(row["current_attempt_id"])
    if attempt_id not in await deps.reads.attempt_ids(batch_id, job_id):
        raise NotFound(f"job {batch_id}/{job_id} has no attempt {attempt_id!r}; see its /attempts")
    return attempt_id


async def _locate(deps: Deps, batch_id: int, job_id: int, attempt_id: str) -> AttemptLocation | None:
    async with deps.pool.connection() as conn:
        return await locate(conn, batch_id, job_id, attempt_id)


async def _store(read: Any) -> Any:
    """Await a read from squall's bucket; the store being down is a 503 the client retries."""
    try:
        return await read
    except ObjectStoreError as exc:
        raise Unavailable(f"the object store holding job logs and status did not answer: {exc}") from exc
