"""Hail's batch endpoints: create (fast and not), updates, bunches, commit, cancel, delete, get, list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.callback_policy import CallbackRefused
from services.front import openapi_schemas as schemas
from services.front.errors import InvalidRequest
from services.front.fields import require_object
from services.front.front_deps import FrontDeps
from services.front.route_support import (
    BatchId,
    Deps,
    JobGroupId,
    UpdateId,
    User,
    json_body,
    json_request_body,
    parsed_body,
)
from services.front.specs import (
    BatchRequest,
    GroupRequest,
    JobRequest,
    SpecRules,
    UpdateRequest,
    check_bunch_size,
    parse_batch,
    parse_groups,
    parse_jobs,
    parse_update,
)

router = APIRouter(prefix="/api/v1alpha", tags=["batches"])


@router.post("/batches/create-fast", openapi_extra=json_request_body(schemas.CREATE_FAST, "batch + one bunch"))
async def create_fast(request: Request, user: User, deps: Deps) -> dict[str, Any]:
    """Create a batch, its update 1 with these groups and jobs, and commit it: one call."""
    batch, groups, jobs = await parsed_body(request, deps, lambda body: _batch_and_bunch(body, deps.rules))
    await _check_callbacks_resolve(deps, batch.callback, groups)
    return await deps.submissions.create_fast(user, batch, groups, jobs)


@router.post("/batches/create", openapi_extra=json_request_body(schemas.BATCH, "batch spec"))
async def create(request: Request, user: User, deps: Deps) -> dict[str, Any]:
    """Create a batch; with n_jobs or n_job_groups > 0 also reserve update 1 (committed later)."""
    batch = parse_batch(await json_body(request, deps.max_body_bytes), deps.rules.callbacks)
    await _check_callbacks_resolve(deps, batch.callback, [])
    return await deps.submissions.create_batch(user, batch)


@router.post("/batches/{batch_id}/update-fast", openapi_extra=json_request_body(schemas.UPDATE_FAST, "update + bunch"))
async def update_fast(batch_id: BatchId, request: Request, user: User, deps: Deps) -> dict[str, Any]:
    update, groups, jobs = await parsed_body(request, deps, lambda body: _update_and_bunch(body, deps.rules))
    await _check_callbacks_resolve(deps, None, groups)
    return await deps.submissions.update_fast(user, batch_id, update, groups, jobs)


@router.post("/batches/{batch_id}/updates/create", openapi_extra=json_request_body(schemas.UPDATE, "update spec"))
async def create_update(batch_id: BatchId, request: Request, user: User, deps: Deps) -> dict[str, Any]:
    update = parse_update(await json_body(request, deps.max_body_bytes))
    return await deps.submissions.create_update(user, batch_id, update)


@router.post("/batches/{batch_id}/updates/{update_id}/job-groups/create",
             openapi_extra=json_request_body(schemas.JOB_GROUPS, "job group specs"))
async def create_job_groups(batch_id: BatchId, update_id: UpdateId, request: Request, user: User,
                            deps: Deps) -> None:
    groups = await parsed_body(request, deps, lambda body: parse_groups(check_bunch_size("body", body),
                                                                        callbacks=deps.rules.callbacks))
    await _check_callbacks_resolve(deps, None, groups)
    await deps.submissions.add_groups(user, batch_id, update_id, groups)


@router.post("/batches/{batch_id}/updates/{update_id}/jobs/create",
             openapi_extra=json_request_body(schemas.JOBS, "one bunch of job specs (a resend adds nothing)"))
async def create_jobs(batch_id: BatchId, update_id: UpdateId, request: Request, user: User, deps: Deps) -> None:
    jobs = await parsed_body(request, deps, lambda body: parse_jobs(check_bunch_size("body", body), deps.rules))
    await deps.submissions.add_jobs(user, batch_id, update_id, jobs)


@router.post("/batches/{batch_id}/jobs/create", deprecated=True,
             openapi_extra=json_request_body(schemas.JOBS, "one bunch of job specs for update 1"))
async def create_jobs_legacy(batch_id: BatchId, request: Request, user: User, deps: Deps) -> None:
    jobs = await parsed_body(request, deps, lambda body: parse_jobs(check_bunch_size("body", body), deps.rules))
    await deps.submissions.add_jobs(user, batch_id, 1, jobs)


@router.patch("/batches/{batch_id}/updates/{update_id}/commit")
async def commit(batch_id: BatchId, update_id: UpdateId, user: User, deps: Deps) -> dict[str, Any]:
    """Commit an update: 400 `wrong number of jobs: expected X, actual Y` until every bunch arrived."""
    return await deps.submissions.commit(user, batch_id, update_id)


@router.patch("/batches/{batch_id}/close", deprecated=True)
async def close(batch_id: BatchId, user: User, deps: Deps) -> dict[str, Any]:
    return await deps.submissions.commit(user, batch_id, 1)


@router.patch("/batches/{batch_id}/cancel")
async def cancel(batch_id: BatchId, user: User, deps: Deps) -> None:
    await deps.submissions.cancel(user, batch_id)


@router.patch("/batches/{batch_id}/job-groups/{job_group_id}/cancel")
async def cancel_job_group(batch_id: BatchId, job_group_id: JobGroupId, user: User, deps: Deps) -> None:
    await deps.submissions.cancel(user, batch_id, job_group_id)


@router.delete("/batches/{batch_id}")
async def delete(batch_id: BatchId, user: User, deps: Deps) -> None:
    """Cancel the batch, then hide it from every read."""
    await deps.submissions.delete(user, batch_id)


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: BatchId, user: User, deps: Deps) -> dict[str, Any]:
    return await deps.reads.batch(user, batch_id)


@router.get("/batches")
async def list_batches(
    user: User, deps: Deps, q: str | None = None,
    last_batch_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Newest first; v1 query language in q; page with last_batch_id."""
    return await deps.reads.batches(user, q if q is not None else f"user:{user}", last_batch_id, limit)


def _batch_and_bunch(raw: Any, rules: SpecRules) -> tuple[BatchRequest, list[GroupRequest], list[JobRequest]]:
    body = require_object("body", raw)
    _only(body, ("batch", "bunch", "job_groups"))
    groups, jobs = body.get("job_groups") or [], body.get("bunch") or []
    check_bunch_size("bunch", jobs, groups)
    return (parse_batch(body.get("batch"), rules.callbacks), parse_groups(groups, callbacks=rules.callbacks),
            parse_jobs(jobs, rules))


def _update_and_bunch(raw: Any, rules: SpecRules) -> tuple[UpdateRequest, list[GroupRequest], list[JobRequest]]:
    body = require_object("body", raw)
    _only(body, ("update", "bunch", "job_groups"))
    groups, jobs = body.get("job_groups") or [], body.get("bunch") or []
    check_bunch_size("bunch", jobs, groups)
    return parse_update(body.get("update")), parse_groups(groups, callbacks=rules.callbacks), parse_jobs(jobs, rules)


async def _check_callbacks_resolve(deps: FrontDeps, batch_callback: str | None, groups: list[GroupRequest]) -> None:
    """400 when a callback's host name resolves to an address callbacks may not reach (the syntax and
    literal addresses were checked while parsing); delivery checks again, against DNS rebinding."""
    urls = [("batch.callback", batch_callback)] + [(f"job_groups[{i}].callback", g.callback)
                                                   for i, g in enumerate(groups)]
    for field, url in urls:
        if url is not None:
            try:
                await deps.rules.callbacks.check_resolves(url, deps.resolver)
            except CallbackRefused as exc:
                raise InvalidRequest(field, str(exc)) from None


def _only(body: Any, allowed: tuple[str, ...]) -> None:
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise InvalidRequest(unknown[0], f"unknown field; allowed: {', '.join(allowed)}")
