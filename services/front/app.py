"""The front end's ASGI app: Hail Batch's /api/v1alpha REST API plus squall's own endpoints.

    app = create_app(deps)     # deps: services.front.deps.FrontDeps (pool, publisher, job data, ...)

OpenAPI is published at GET /openapi.json (interactive docs at /docs). Errors are JSON
`{"message": ...}` with a 4xx naming the field to fix; a 5xx means a bug or an unavailable
dependency (503: the log or the database), which Hail's client retries.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.front import routes_batches, routes_cost, routes_jobs, routes_meta, routes_rerun, routes_v2
from services.front.deps import FrontDeps
from services.front.errors import Forbidden, FrontError
from services.front.users import is_operator
from services.request_input import BadInput, InputGuard

log = logging.getLogger("squall.front")

OPENAPI_PATH = "/openapi.json"


def create_app(deps: FrontDeps, *, metrics: bool = False, metrics_need_token: bool = False) -> FastAPI:
    """`metrics`: serve GET /metrics; `metrics_need_token`: only to an operator's bearer token (the
    metrics name users), which a front end listening beyond loopback requires (server.py)."""
    app = FastAPI(title="squall front end", version="1", openapi_url=OPENAPI_PATH,
                  summary="Hail Batch's REST API (/api/v1alpha) served from an event log")
    app.state.deps = deps
    app.include_router(routes_batches.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_meta.router)
    app.include_router(routes_v2.router)
    app.include_router(routes_rerun.router)
    app.include_router(routes_cost.router)
    app.add_exception_handler(FrontError, _front_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BadInput, _bad_input)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_down)  # type: ignore[arg-type]
    app.add_middleware(InputGuard)  # NUL, non-UTF-8 and over-long URLs: 4xx before any route
    if metrics:
        from events.process.metrics import add_metrics

        add_metrics(app, authorize=_operator_only if metrics_need_token else None)
    app.add_middleware(_NoSniff)
    return app


async def _operator_only(request: Request) -> None:
    deps: FrontDeps = request.app.state.deps
    user = await deps.tokens.user(request.headers.get("authorization"))
    async with deps.pool.connection() as conn:
        if not await is_operator(conn, user):
            raise Forbidden(f"/metrics is for operators; {user!r} is not one (squall user create NAME --operator)")


class _NoSniff:
    """X-Content-Type-Options: nosniff on every answer: a job's log served as bytes stays bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_with_header if scope["type"] == "http" else send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def _front_error(_request: Request, exc: FrontError) -> JSONResponse:
    return _error(exc.status, exc.message)


async def _bad_input(_request: Request, exc: BadInput) -> JSONResponse:
    return _error(exc.status, exc.message)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's checks of path and query parameters, answered as Hail does: 400 with the field."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return _error(400, f"{where}: {first.get('msg', 'invalid value')}")


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return _error(exc.status_code, str(exc.detail))


async def _database_down(_request: Request, exc: psycopg.OperationalError) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _error(503, "the database is unavailable; retry shortly")
