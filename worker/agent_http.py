"""The worker agent's own HTTP endpoint: the live log of the attempts running here.

While a step runs, its log is on this machine (the spool, worker/records.py) seconds before the
store has it; the front end asks here for it, as Hail's front end asks its workers:

    GET /api/v1alpha/attempts/{batch_id}/{job_id}/{attempt_id}/log/{step}?start=N | ?tail=N
        Authorization: Bearer <the instance's secret>
    -> 200 the log's bytes from offset N, or its last N bytes (X-Squall-Log-Size: the whole size);
       404 when this agent has no such log

The secret is made fresh at each start and put in squall's bucket (instances/<name>/agent-secret),
which only squall's services read; the endpoint's address travels on InstanceActivated. Anything
without the secret gets 401, so a job on the same network cannot read other users' logs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from events.objectstore.layout import STEPS
from worker.records import AttemptIds, AttemptRecords

log = logging.getLogger("squall.worker.http")
SECRET_BYTES = 32


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def build_app(records: AttemptRecords, secret: str) -> Starlette:
    expected = f"Bearer {secret}".encode()

    async def attempt_log(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return PlainTextResponse("a valid instance secret is required", status_code=401)
        p = request.path_params
        step = p["step"]
        if step not in STEPS:
            return PlainTextResponse(f"no step {step!r}", status_code=404)
        try:
            start = int(request.query_params.get("start", "0"))
            tail = request.query_params.get("tail")
            ids = AttemptIds(int(p["batch_id"]), int(p["job_id"]), p["attempt_id"])
            found = records.read_spooled_log(ids, step, start, None if tail is None else max(0, int(tail)))
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        if found is None:
            return PlainTextResponse("no such log on this instance", status_code=404)
        data, size = found
        return Response(data, media_type="application/octet-stream",
                        headers={"X-Squall-Log-Size": str(size), "Cache-Control": "no-store"})

    async def healthcheck(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/api/v1alpha/attempts/{batch_id:int}/{job_id:int}/{attempt_id}/log/{step}", attempt_log),
        Route("/healthcheck", healthcheck),
    ])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the agent owns SIGTERM/SIGINT (it drains); the endpoint stops when the agent says so


def bind(host: str, port_file: Path | None, port: int = 0) -> socket.socket:
    """A listening socket; with port 0, the port this instance used last time (kept in port_file)
    if it is free, so the address announced on InstanceActivated stays right across restarts."""
    wanted = port
    if not wanted and port_file is not None:
        with contextlib.suppress(OSError, ValueError):
            wanted = int(port_file.read_text().strip())
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, wanted))
    except OSError:
        if port:  # asked for exactly this port
            sock.close()
            raise
        sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    if port_file is not None:
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(f"{sock.getsockname()[1]}\n")
    return sock


class AgentEndpoint:
    def __init__(self, records: AttemptRecords, secret: str, sock: socket.socket,
                 advertise_url: str | None = None) -> None:
        self.secret = secret
        self._sock = sock
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = advertise_url or f"http://{shown}:{port}"
        config = uvicorn.Config(build_app(records, secret), log_level="warning", access_log=False,
                                lifespan="off")
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="agent-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the agent's HTTP endpoint stopped while starting")
            await asyncio.sleep(0.01)
        log.info("serving live logs on %s", self.url)
        return self.url

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)
        self._sock.close()
