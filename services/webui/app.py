"""The operators' web UI as one Starlette app: `create_ui(...)`, mounted by the front end at /ui.

Server-rendered Jinja2 pages over the read models; the only script is static/ui.js (live logs and a
cancel confirmation), and every page works without it.
Sign-in takes the user's API token and keeps it in an HttpOnly cookie (session.py); every page
resolves it to a user through the front end's token table and shows only that user's batches.
Actions go through the public API with the user's token (cancel: PATCH {api_base}/batches/{id}/cancel,
re-run the failed jobs: POST {api_base}/batches/{id}/rerun-failed), so the UI never writes events or
tables itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import jinja2
from psycopg import AsyncConnection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from services.front.queries import CURRENT_QUERY_VERSION, VERSIONS
from services.jobdata import JobData
from services.request_input import BadInput, InputGuard, IntParam, Param, TextParam
from services.webui import pages, present, session
from services.webui.db import ReadModelPool
from services.webui.headers import SecurityHeaders
from services.webui.readmodels import PAGE_SIZE, get_batch, is_operator, user_for_token

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16 * 1024
# The UI's query parameters, by kind: ids as the read models store them, text PostgreSQL can hold.
QUERY = TextParam(max_len=4096)
BATCH_ID = IntParam(0, 2**63 - 1)
JOB_ID = IntParam(0, 2**31 - 1)
ATTEMPT_ID = TextParam(max_len=64)


@dataclass
class UiContext:
    pool: ReadModelPool
    templates: Jinja2Templates
    job_data: JobData  # logs and usage: squall's bucket, and running attempts' agents
    api_base: str
    api_transport: httpx.AsyncBaseTransport | None
    secure_cookies: bool
    page_size: int
    query_version: int  # the query language of the search boxes: Hail's UI uses its current one, 2


@dataclass
class Visit:
    """One signed-in request: what every page handler needs."""

    request: Request
    ui: UiContext
    conn: AsyncConnection
    user: str
    token: str
    operator: bool  # sees the fleet: instances and pools
    query: dict[str, Any]  # the route's declared query parameters, parsed (None when absent)

    def path_for(self, name: str, **params: Any) -> str:
        return path_for(self.request, name, **params)

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        context.update(user=self.user, operator=self.operator, csrf=session.csrf_token(self.token),
                       query_version=self.ui.query_version)
        return render(self.request, template, status_code=status_code, **context)


def path_for(request: Request, name: str, **params: Any) -> str:
    """A path inside this app, prefixed with wherever the app is mounted (its root_path)."""
    ui_app: Starlette = request.scope["ui_app"]
    return request.scope.get("root_path", "").rstrip("/") + str(ui_app.router.url_path_for(name, **params))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    ui: UiContext = request.scope["ui_app"].state.ui
    context.setdefault("user", None)
    return ui.templates.TemplateResponse(
        request, template, {"path_for": lambda name, **p: path_for(request, name, **p), **context},
        status_code=status_code)


PageHandler = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def parse_query(request: Request, declared: Mapping[str, Param]) -> dict[str, Any]:
    """The declared query parameters, each parsed by its one parser (400 naming it when bad);
    undeclared ones are ignored, so a handler sees only what its route declares."""
    out: dict[str, Any] = {}
    for name, param in declared.items():
        raw = request.query_params.get(name)
        try:
            out[name] = None if raw is None else param.parse(name, raw)
        except BadInput as exc:
            raise HTTPException(exc.status, exc.message) from None
    return out


def declares(endpoint: Endpoint, query: Mapping[str, Param]) -> Endpoint:
    """Record the endpoint's query parameters on it: the route table is where they are listed
    (tests/integration/webui fuzzes each one with hostile values)."""
    endpoint.query_params = dict(query)  # type: ignore[attr-defined]
    return endpoint


def public(handler: Callable[[Request, dict[str, Any]], Awaitable[Response]], **query: Param) -> Endpoint:
    """A page anyone may see; the handler gets its parsed query parameters."""
    async def endpoint(request: Request) -> Response:
        return await handler(request, parse_query(request, query))
    return declares(endpoint, query)


def signed_in(handler: PageHandler, **query: Param) -> Endpoint:
    """Resolve the cookie to a user (or send the browser to sign in), and lend the handler a connection."""
    async def endpoint(request: Request) -> Response:
        ui: UiContext = request.scope["ui_app"].state.ui
        params = parse_query(request, query)
        token = session.token_from(request)
        async with ui.pool.connection() as conn:
            user = await user_for_token(conn, token) if token else None
            if user is None or token is None:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = path_for(request, "login") + "?" + urlencode({"next": here})
                response = RedirectResponse(target, status_code=303)
                if token:  # a revoked or mistyped token: forget it
                    session.clear_token_cookie(response, request)
                return response
            return await handler(Visit(request=request, ui=ui, conn=conn, user=user, token=token,
                                       operator=await is_operator(conn, user), query=params))
    return declares(endpoint, query)


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the UI's own forms), without a multipart dependency."""
    body = bytearray()
    async for chunk in request.stream():  # stop reading at the cap instead of buffering any size
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}


async def login_page(request: Request, query: dict[str, Any]) -> Response:
    next_path = session.safe_next(query["next"], path_for(request, "batches"))
    return render(request, "login.html", next=next_path, error=None)


async def login(request: Request) -> Response:
    ui: UiContext = request.scope["ui_app"].state.ui
    form = await read_form(request)
    token = form.get("token", "").strip()
    next_path = session.safe_next(form.get("next"), path_for(request, "batches"))
    async with ui.pool.connection() as conn:
        user = await user_for_token(conn, token) if token else None
    if user is None:
        return render(request, "login.html", status_code=401, next=next_path,
                      error="That token is not valid. Use the token your squall account was given.")
    response = RedirectResponse(next_path, status_code=303)
    session.set_token_cookie(response, request, token, secure=ui.secure_cookies)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse(path_for(request, "login"), status_code=303)
    session.clear_token_cookie(response, request)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse(path_for(request, "batches"), status_code=303)


async def _cancel_batch(visit: Visit) -> Response:
    """Forward the cancel to the API as the user, then show the batch again with the outcome."""
    batch_id = await _checked_form(visit)
    answer, outcome = await _call_api(visit, "PATCH", f"/batches/{batch_id}/cancel")
    if answer is not None and answer.is_success:
        outcome = "requested"
    target = visit.path_for("batch", batch_id=batch_id) + "?" + urlencode({"cancel": outcome})
    return RedirectResponse(target, status_code=303)


@signed_in
async def rerun_failed(visit: Visit) -> Response:
    """Forward "re-run the failed jobs" to the API as the user; the batch page shows what it made."""
    batch_id = await _checked_form(visit)
    answer, outcome = await _call_api(visit, "POST", f"/batches/{batch_id}/rerun-failed")
    if answer is not None and answer.is_success:
        made = answer.json()
        outcome = f"done: update {made.get('update_id')} re-runs {made.get('n_jobs')} jobs"
    target = visit.path_for("batch", batch_id=batch_id) + "?" + urlencode({"rerun": outcome})
    return RedirectResponse(target, status_code=303)


async def _checked_form(visit: Visit) -> int:
    """The batch id of a POSTed form whose CSRF token is good and whose batch is the user's."""
    batch_id: int = visit.request.path_params["batch_id"]
    form = await read_form(visit.request)
    if not session.csrf_ok(visit.token, form.get("csrf")):
        raise HTTPException(403, "This form has expired; reload the page and try again.")
    if await get_batch(visit.conn, visit.user, batch_id) is None:
        raise HTTPException(404, f"batch {batch_id} not found")
    return batch_id


async def _call_api(visit: Visit, method: str, path: str) -> tuple[httpx.Response | None, str]:
    """The API's answer (None if unreachable) and, for a failure, what to tell the user."""
    url = api_url(visit.request, visit.ui.api_base, path)
    try:
        async with httpx.AsyncClient(transport=visit.ui.api_transport, timeout=30) as client:
            answer = await client.request(method, url, headers={"Authorization": f"Bearer {visit.token}"})
    except httpx.HTTPError as exc:
        return None, f"failed (the API could not be reached: {exc})"
    try:
        message = str(answer.json().get("message") or answer.text)
    except (ValueError, AttributeError):
        message = answer.text
    return answer, f"failed ({answer.status_code}: {message[:200]})"


cancel_batch = signed_in(_cancel_batch)


def api_url(request: Request, api_base: str, path: str) -> str:
    """api_base may be absolute (another host) or a path on the server that served this page.

    A relative base is resolved against the address this server accepted the connection on, never
    the Host header: the request carries the user's token, and a client must not choose its target.
    """
    base = api_base.rstrip("/")
    if not base.startswith(("http://", "https://")):
        host, port = request.scope.get("server") or ("127.0.0.1", None)
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if request.scope.get("scheme") == "https" else "http"
        base = f"{scheme}://{host}{'' if port is None else f':{port}'}{base}"  # no port: an in-process server
    return base + path


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, message=exc.detail)


class _MarkUiApp:
    """Record this app in the scope: a mounted app's routes are resolved against it, not the outer router."""

    def __init__(self, app: Any, ui_app: Starlette) -> None:
        self.app = app
        self.ui_app = ui_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["ui_app"] = self.ui_app
        await self.app(scope, receive, send)


def create_ui(database_url: str, job_data: JobData, api_base: str = "/api/v1alpha", *,
              api_transport: httpx.AsyncBaseTransport | None = None, secure_cookies: bool = False,
              page_size: int = PAGE_SIZE, query_version: int = CURRENT_QUERY_VERSION) -> Starlette:
    """The UI app. Mount it (e.g. at /ui) in the front end; `api_base` is where the API answers.

    `api_transport` lets a process call its own API in-process (httpx.ASGITransport) instead of over
    the network; `secure_cookies` should be True when the UI is served over HTTPS; `page_size` is
    how many batches or jobs a list shows (the API's 50 by default); `query_version` is the query
    language of the search boxes, for the whole deployment as in Hail's UI (CURRENT_QUERY_VERSION,
    2; 1 keeps Hail's legacy language).
    """
    if query_version not in VERSIONS:
        raise ValueError(f"query_version must be one of {VERSIONS}, not {query_version!r}")
    # autoescape everything (not only *.html): every value on a page may come from a user
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters.update(present.FILTERS)
    templates = Jinja2Templates(env=env)
    ui = UiContext(pool=ReadModelPool(database_url), templates=templates, job_data=job_data,
                   api_base=api_base, api_transport=api_transport, secure_cookies=secure_cookies,
                   page_size=page_size, query_version=query_version)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await ui.pool.close()
        await ui.job_data.close()

    routes = [
        Route("/", declares(home, {}), name="home"),
        Route("/login", public(login_page, next=TextParam()), methods=["GET"], name="login"),
        Route("/login", declares(login, {}), methods=["POST"], name="login_submit"),
        Route("/logout", declares(logout, {}), methods=["POST"], name="logout"),
        Route("/batches", signed_in(pages.batches, q=QUERY, last_batch_id=BATCH_ID), name="batches"),
        Route("/batches/{batch_id:int}", signed_in(pages.batch, q=QUERY, last_job_id=JOB_ID, cancel=TextParam(),
                                                    rerun=TextParam()),
              name="batch"),
        Route("/batches/{batch_id:int}/cancel", cancel_batch, methods=["POST"], name="cancel_batch"),
        Route("/batches/{batch_id:int}/rerun-failed", rerun_failed, methods=["POST"], name="rerun_failed"),
        Route("/batches/{batch_id:int}/job-groups/{job_group_id:int}",
              signed_in(pages.job_group, q=QUERY, last_job_id=JOB_ID), name="job_group"),
        Route("/batches/{batch_id:int}/jobs/{job_id:int}", signed_in(pages.job, attempt_id=ATTEMPT_ID), name="job"),
        Route("/batches/{batch_id:int}/jobs/{job_id:int}/log/{step}",
              signed_in(pages.job_log, attempt_id=ATTEMPT_ID, tail=IntParam(0, 2**62)), name="job_log"),
        Route("/instances", signed_in(pages.instances, deleted=TextParam(max_len=8)), name="instances"),
        Route("/pools/{pool}", signed_in(pages.pool), name="pool"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.ui = ui
    app.add_middleware(_MarkUiApp, ui_app=app)
    app.add_middleware(InputGuard)  # NUL, non-UTF-8 and over-long URLs: 4xx before any page
    app.add_middleware(SecurityHeaders)  # CSP, nosniff, no framing: on every answer, errors included
    return app


async def close_ui(app: Starlette) -> None:
    """Close the UI's database pool; call it at shutdown when the UI is mounted (Starlette runs no
    lifespan of a mounted app). Harmless if the pool never opened."""
    ui: UiContext = app.state.ui
    await ui.pool.close()
    await ui.job_data.close()
