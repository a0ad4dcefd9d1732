"""HTTP plumbing shared by the routes: the deps, the caller, bounded JSON bodies, path-id types."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Path, Request

from services.front.deps import FrontDeps
from services.front.errors import InvalidRequest, PayloadTooLarge

MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1

BatchId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="the batch id")]
UpdateId = Annotated[int, Path(ge=1, le=MAX_INT, description="the update id (1 for the batch's first)")]
JobId = Annotated[int, Path(ge=1, le=MAX_INT, description="the absolute job id")]
JobGroupId = Annotated[int, Path(ge=0, le=MAX_INT, description="the absolute job group id (0: root)")]


def deps_of(request: Request) -> FrontDeps:
    return request.app.state.deps  # type: ignore[no-any-return]


async def current_user(request: Request) -> str:
    return await deps_of(request).tokens.user(request.headers.get("authorization"))


User = Annotated[str, Depends(current_user)]
Deps = Annotated[FrontDeps, Depends(deps_of)]


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON body; 413 beyond `limit` bytes, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit} bytes (send smaller bunches)")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (send smaller bunches)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise InvalidRequest("body", "is empty; send a JSON document")
    try:
        return orjson.loads(body)  # strict JSON: NaN/Infinity and nesting deeper than 1024 are errors
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("body", f"is not valid JSON ({exc})") from None


def json_request_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """openapi_extra for a route that reads its JSON body itself (so errors are Hail's 400s, not 422s)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


def parse_bool_param(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(name, f"{value!r} is not a boolean; use true or false")

