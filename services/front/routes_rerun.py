"""squall's `POST /api/v1alpha/batches/{id}/rerun-failed`: copy the failed jobs into a new update.

Body (optional): `{"token": "..."}`, an idempotency key like an update's: a retry with the same
token gets the first answer. Answer: `{batch_id, update_id, start_job_id, n_jobs, job_ids:
{old: new}, skipped_job_ids}`; 400 when nothing ended Failed, Error or Cancelled (or the batch is
cancelled). Semantics: services/front/rerun.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.front.fields import as_str, reject_unknown, require_object
from services.front.route_support import BatchId, Deps, User, json_body

router = APIRouter(prefix="/api/v1alpha", tags=["squall"])

MAX_BODY_BYTES = 64 * 1024
_BODY = {"type": "object", "properties": {"token": {"type": "string", "minLength": 1, "maxLength": 100}},
         "additionalProperties": False}


@router.post("/batches/{batch_id}/rerun-failed", openapi_extra={"requestBody": {
    "required": False, "description": "optional: an idempotency token",
    "content": {"application/json": {"schema": _BODY}}}})
async def rerun_failed(batch_id: BatchId, request: Request, user: User, deps: Deps) -> dict[str, Any]:
    """One new update with a copy of every job that ended Failed, Error or Cancelled; old ids -> new ids."""
    token = None
    if _has_body(request):
        body = require_object("body", await json_body(request, MAX_BODY_BYTES))
        reject_unknown("", body, ("token",))
        if body.get("token") is not None:
            token = as_str("token", body["token"], nonempty=True, max_len=100)
    return await deps.reruns.rerun_failed(user, batch_id, token)


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers
