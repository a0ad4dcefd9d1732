"""HTTP plumbing shared by the routes: the deps, the caller, bounded JSON bodies, path-id types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Path, Request

from services.front.errors import InvalidRequest, PayloadTooLarge
from services.front.front_deps import FrontDeps
from services.front.offload import INLINE_BODY_BYTES

T = TypeVar("T")

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


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; 413 beyond `limit` bytes (checked while reading: nothing bigger is buffered)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit} bytes (send smaller bunches)")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (send smaller bunches)")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes) -> Any:
    """Strict JSON (NaN/Infinity, nesting deeper than 1024 and lone surrogates are errors), or 400."""
    if not body.strip():
        raise InvalidRequest("body", "is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("body", f"is not valid JSON ({exc})") from None


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, decoded inline (for small documents); 413 beyond `limit` bytes."""
    return decode_json(await read_body(request, limit))


async def parsed_body(request: Request, deps: FrontDeps, parse: Callable[[Any], T]) -> T:
    """`parse(the JSON body)`: decoded and checked off the event loop when the body is big."""
    body = await read_body(request, deps.max_body_bytes)
    return await deps.cpu.run_if(len(body) > INLINE_BODY_BYTES, lambda: parse(decode_json(body)))


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

