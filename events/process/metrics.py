"""squall's Prometheus metrics: one set of documented names (docs/METRICS.md) shared by every service.

Services never build metric objects themselves; they call the helpers here:

    observe_event(event)                   after appending/consuming SJ, MJS, MJC (one call per event)
    with time_scheduling_cycle(): ...      around one scheduler cycle
    set_ready_jobs({"alice": 12})          the ready queue depth per user, replacing the last snapshot
    set_instance_utilisation({"w-1": 0.5}) used / total cores per instance, replacing the last snapshot
    set_projection_lag("readmodel", 42)    events a projection is behind the log end
    count_callback("delivered")            a batch or job-group callback fired, by outcome
    add_metrics(app)                       HTTP latency middleware + GET /metrics on a Starlette app
    start_metrics_server(port)             a /metrics endpoint for processes that serve no HTTP

Everything registers on one `SquallMetrics` instance (the module default uses prometheus-client's
default registry, so process metrics come along); tests build their own on a fresh registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.registry import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events.catalog import JobAttemptCompleted, JobAttemptScheduled, JobAttemptStarted

# Label value when an attempt completed without a failure cause (a success).
NO_FAILURE_CAUSE = "none"
# Route label for requests no route matched: bounded cardinality, whatever paths scanners try.
UNMATCHED_ROUTE = "<unmatched>"

# Jobs run from sub-second to days; scheduling cycles from sub-millisecond to seconds.
_RUNTIME_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
_CYCLE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class SquallMetrics:
    """Every squall metric, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs_scheduled = Counter(
            "squall_jobs_scheduled_total", "Attempts placed on an instance by the scheduler (SJ events).",
            registry=registry)
        self.attempts_started = Counter(
            "squall_attempts_started_total", "Attempts a worker started (MJS events).", registry=registry)
        self.attempts_completed = Counter(
            "squall_attempts_completed_total", "Attempts that ended (MJC events), by outcome and failure cause.",
            ["outcome", "failure_cause"], registry=registry)
        self.scheduling_cycle = Histogram(
            "squall_scheduling_cycle_seconds", "Wall time of one scheduler cycle (allocate + match + append).",
            buckets=_CYCLE_BUCKETS, registry=registry)
        self.ready_jobs = Gauge(
            "squall_ready_jobs", "Jobs in the ready queue, per user.", ["user"], registry=registry)
        self.job_runtime = Histogram(
            "squall_job_runtime_seconds", "Run time of finished attempts (MJC ended_at - started_at).",
            buckets=_RUNTIME_BUCKETS, registry=registry)
        self.instance_utilisation = Gauge(
            "squall_instance_utilisation_ratio", "Allocated / total cores of an instance (0..1).",
            ["instance"], registry=registry)
        self.projection_lag = Gauge(
            "squall_projection_lag_events", "Events between a projection's committed offset and the log end.",
            ["projection"], registry=registry)
        self.callbacks = Counter(
            "squall_callbacks_total", "Batch and job-group callbacks fired, by outcome.", ["outcome"],
            registry=registry)
        self.http_request_duration = Histogram(
            "squall_http_request_duration_seconds", "HTTP request latency by method, route template and status.",
            ["method", "route", "status"], buckets=_HTTP_BUCKETS, registry=registry)
        # Label sets currently exported by the snapshot gauges, so a vanished user/instance is removed.
        self._snapshot_lock = threading.Lock()
        self._ready_users: set[str] = set()
        self._instances: set[str] = set()

    def observe_event(self, event: object) -> bool:
        """Count one catalog event; returns False for event types no metric follows."""
        if isinstance(event, JobAttemptScheduled):
            self.jobs_scheduled.inc()
        elif isinstance(event, JobAttemptStarted):
            self.attempts_started.inc()
        elif isinstance(event, JobAttemptCompleted):
            self.attempts_completed.labels(
                outcome=event.outcome, failure_cause=event.failure_cause or NO_FAILURE_CAUSE).inc()
            if event.started_at is not None and event.ended_at >= event.started_at:
                self.job_runtime.observe((event.ended_at - event.started_at) / 1000.0)
        else:
            return False
        return True

    @contextmanager
    def time_scheduling_cycle(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.scheduling_cycle.observe(time.perf_counter() - start)

    def set_ready_jobs(self, ready_by_user: Mapping[str, int]) -> None:
        with self._snapshot_lock:
            self._ready_users = _replace_snapshot(self.ready_jobs, self._ready_users, ready_by_user)

    def set_instance_utilisation(self, ratio_by_instance: Mapping[str, float]) -> None:
        with self._snapshot_lock:
            self._instances = _replace_snapshot(self.instance_utilisation, self._instances, ratio_by_instance)

    def set_projection_lag(self, projection: str, lag_events: int) -> None:
        self.projection_lag.labels(projection=projection).set(max(0, lag_events))

    def count_callback(self, outcome: str) -> None:
        self.callbacks.labels(outcome=outcome).inc()


def _replace_snapshot(gauge: Gauge, exported: set[str], values: Mapping[str, float]) -> set[str]:
    """Set one gauge child per key and drop children whose key disappeared (a user with nothing ready)."""
    for gone in exported - values.keys():
        gauge.remove(gone)
    for key, value in values.items():
        gauge.labels(key).set(value)
    return set(values)


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template a request matched ("/batches/{batch_id}"), mounts included, never the raw path."""
    for route in routes:
        match, child = route.matches(scope)
        if match != Match.FULL:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child})
            return route.path + inner if inner != UNMATCHED_ROUTE else route.path + "/*"
        if isinstance(route, Route):
            return route.path
        return getattr(route, "path", UNMATCHED_ROUTE)
    return UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Pure ASGI middleware timing each HTTP request into squall_http_request_duration_seconds."""

    def __init__(self, app: ASGIApp, metrics: SquallMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics or default_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # scope["app"] is this Starlette app now; a mounted sub-app overwrites it while routing.
        outer_app = scope.get("app")
        routing_scope = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", ""),
                         "method": scope["method"]}
        status = 500
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            routes = getattr(outer_app, "routes", [])
            self.metrics.http_request_duration.labels(
                method=scope["method"], route=route_template(routes, routing_scope), status=str(status),
            ).observe(time.perf_counter() - start)


Authorize = Callable[[Request], Awaitable[None]]


def add_metrics(app: Starlette, metrics: SquallMetrics | None = None, path: str = "/metrics",
                authorize: Authorize | None = None) -> None:
    """Time every request of `app` and serve the exposition at `path` (call before the app starts).

    `authorize(request)` runs before each scrape and raises to refuse it (the metrics name users):
    the front end asks for an operator's token when it listens beyond loopback."""
    metrics = metrics or default_metrics()
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_route(path, metrics_endpoint(metrics, authorize), methods=["GET"], include_in_schema=False)


def metrics_endpoint(metrics: SquallMetrics | None = None,
                     authorize: Authorize | None = None) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint answering the text exposition of `metrics`' registry."""
    registry = (metrics or default_metrics()).registry

    async def serve_metrics(request: Request) -> Response:
        if authorize is not None:
            await authorize(request)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return serve_metrics


def start_metrics_server(port: int, addr: str = "127.0.0.1", metrics: SquallMetrics | None = None) -> int:
    """Serve /metrics from a daemon thread (scheduler, workers, projections); returns the bound port."""
    metrics = metrics or default_metrics()
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return int(server.server_port)


_default: SquallMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> SquallMetrics:
    """The process-wide metrics on prometheus-client's default registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SquallMetrics(REGISTRY)
        return _default


def observe_event(event: object) -> bool:
    return default_metrics().observe_event(event)


def time_scheduling_cycle() -> AbstractContextManager[None]:
    return default_metrics().time_scheduling_cycle()


def set_ready_jobs(ready_by_user: Mapping[str, int]) -> None:
    default_metrics().set_ready_jobs(ready_by_user)


def set_instance_utilisation(ratio_by_instance: Mapping[str, float]) -> None:
    default_metrics().set_instance_utilisation(ratio_by_instance)


def set_projection_lag(projection: str, lag_events: int) -> None:
    default_metrics().set_projection_lag(projection, lag_events)


def count_callback(outcome: str) -> None:
    default_metrics().count_callback(outcome)
