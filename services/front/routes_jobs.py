"""Hail's job and job-group endpoints: listings, job status, attempts, logs, resource usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.front.errors import InvalidRequest, NotFound
from services.front.http import BatchId, Deps, JobGroupId, JobId, User, parse_bool_param
from services.front.shapes import job_status
from services.front.specs import ROOT_JOB_GROUP_ID
from worker.blobs import STEPS, log_path, resource_usage_path, status_path

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
    """The job with its spec, attributes and worker status (live from the blob store while running)."""
    row = await deps.reads.job_row(user, batch_id, job_id)
    status = row["status"]
    if status is None and row["current_attempt_id"]:
        status = await _read_json(status_path(deps.blob_root, batch_id, job_id, row["current_attempt_id"]))
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
    out = {}
    for step in STEPS:
        data = await _read_bytes(log_path(deps.blob_root, batch_id, job_id, attempt, step))
        if data is not None:
            out[step] = data.decode(errors="replace")
    return out


@router.get("/batches/{batch_id}/jobs/{job_id}/log/{container}", response_class=Response)
async def get_step_log(batch_id: BatchId, job_id: JobId, container: str, user: User, deps: Deps,
                       attempt_id: AttemptId = None) -> Response:
    """Raw bytes of one step's log; grows while the step runs."""
    attempt = await _attempt(deps, user, batch_id, job_id, container, attempt_id)
    data = await _read_bytes(log_path(deps.blob_root, batch_id, job_id, attempt, container))
    if data is None:
        raise NotFound(f"no {container} log for attempt {attempt} of job {batch_id}/{job_id}: the step has not "
                       "started (or never will)")
    return Response(content=data, media_type="application/octet-stream")


@router.get("/batches/{batch_id}/jobs/{job_id}/resource_usage")
async def get_resource_usage(batch_id: BatchId, job_id: JobId, user: User, deps: Deps,
                             attempt_id: AttemptId = None) -> dict[str, Any]:
    """Per step, a pandas "split" time series (time_msecs, memory_in_bytes, cpu_usage, io_storage_in_bytes)."""
    attempt = await _attempt(deps, user, batch_id, job_id, "main", attempt_id)
    out: dict[str, Any] = {}
    for step in STEPS:
        usage = await _read_json(resource_usage_path(deps.blob_root, batch_id, job_id, attempt, step))
        if usage is not None:
            out[step] = usage
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


async def _read_bytes(path: Path) -> bytes | None:
    try:
        return await anyio.to_thread.run_sync(path.read_bytes)
    except (FileNotFoundError, NotADirectoryError):
        return None


async def _read_json(path: Path) -> Any:
    data = await _read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None  # a document being written right now; the next poll reads it whole
