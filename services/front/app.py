"""The front end's ASGI app: Hail Batch's /api/v1alpha REST API plus squall's own endpoints.

    app = create_app(deps)     # deps: services.front.deps.FrontDeps (pool, publisher, blob root, ...)

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

from services.front import routes_batches, routes_jobs, routes_meta, routes_rerun, routes_v2
from services.front.deps import FrontDeps
from services.front.errors import FrontError

log = logging.getLogger("squall.front")

OPENAPI_PATH = "/openapi.json"


def create_app(deps: FrontDeps, *, metrics: bool = False) -> FastAPI:
    app = FastAPI(title="squall front end", version="1", openapi_url=OPENAPI_PATH,
                  summary="Hail Batch's REST API (/api/v1alpha) served from an event log")
    app.state.deps = deps
    app.include_router(routes_batches.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_meta.router)
    app.include_router(routes_v2.router)
    app.include_router(routes_rerun.router)
    app.add_exception_handler(FrontError, _front_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_down)  # type: ignore[arg-type]
    if metrics:
        from services.metrics import add_metrics

        add_metrics(app)
    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def _front_error(_request: Request, exc: FrontError) -> JSONResponse:
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
