"""events.process.metrics: each helper moves the documented metric, and the exposition carries the names."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from events.catalog import (
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobCompleted,
    StepTiming,
)
from events.process.metrics import UNMATCHED_ROUTE, SquallMetrics, add_metrics, start_metrics_server

ENVELOPE = {"occurred_at": 1_000, "producer": "test", "batch_id": 1, "job_id": 2}


@pytest.fixture
def metrics() -> SquallMetrics:
    return SquallMetrics(CollectorRegistry())


def sample(metrics: SquallMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def scheduled() -> JobAttemptScheduled:
    return JobAttemptScheduled(event_id="sj", attempt_id="a1", instance_name="w-1", scheduler_epoch=1, user="alice",
                               cores_mcpu=1000, memory_bytes=1 << 30, storage_gib=0, awaits_verdict=True, **ENVELOPE)


def completed(outcome: str, cause: str | None, started_at: int | None, ended_at: int) -> JobAttemptCompleted:
    return JobAttemptCompleted(event_id=f"mjc-{outcome}", attempt_id="a1", instance_name="w-1", outcome=outcome,
                               exit_code=0 if cause is None else 1, failure_cause=cause, out_of_memory=False,
                               started_at=started_at, ended_at=ended_at,
                               steps=(StepTiming(name="main", state="succeeded"),), **ENVELOPE)


def test_observe_event_counts_sj_mjs_mjc_and_runtime(metrics: SquallMetrics) -> None:
    assert metrics.observe_event(scheduled())
    assert metrics.observe_event(scheduled())
    assert metrics.observe_event(JobAttemptStarted(event_id="mjs", attempt_id="a1", instance_name="w-1",
                                                   started_at=1_000, **ENVELOPE))
    assert metrics.observe_event(completed("Success", None, started_at=1_000, ended_at=91_000))
    assert metrics.observe_event(completed("Error", "instance_lost", started_at=None, ended_at=5_000))

    assert sample(metrics, "squall_jobs_scheduled_total") == 2
    assert sample(metrics, "squall_attempts_started_total") == 1
    assert sample(metrics, "squall_attempts_completed_total", outcome="Success", failure_cause="none") == 1
    assert sample(metrics, "squall_attempts_completed_total", outcome="Error", failure_cause="instance_lost") == 1
    # only the attempt that reported a start time has a runtime: 90 s, in the 120 s bucket but not the 60 s one
    assert sample(metrics, "squall_job_runtime_seconds_count") == 1
    assert sample(metrics, "squall_job_runtime_seconds_sum") == 90.0
    assert sample(metrics, "squall_job_runtime_seconds_bucket", le="60.0") == 0
    assert sample(metrics, "squall_job_runtime_seconds_bucket", le="120.0") == 1


def test_observe_event_ignores_events_no_metric_follows(metrics: SquallMetrics) -> None:
    done = JobCompleted(event_id="jc", state="Success", n_attempts=1, **ENVELOPE)
    assert not metrics.observe_event(done)
    assert sample(metrics, "squall_jobs_scheduled_total") == 0


def test_snapshot_gauges_drop_vanished_labels(metrics: SquallMetrics) -> None:
    metrics.set_ready_jobs({"alice": 3, "bob": 5})
    metrics.set_ready_jobs({"bob": 1})
    assert sample(metrics, "squall_ready_jobs", user="alice") is None
    assert sample(metrics, "squall_ready_jobs", user="bob") == 1

    metrics.set_instance_utilisation({"w-1": 0.25, "w-2": 1.0})
    metrics.set_instance_utilisation({"w-2": 0.5})
    assert sample(metrics, "squall_instance_utilisation_ratio", instance="w-1") is None
    assert sample(metrics, "squall_instance_utilisation_ratio", instance="w-2") == 0.5


def test_projection_lag_and_scheduling_cycle(metrics: SquallMetrics) -> None:
    metrics.set_projection_lag("readmodel", 42)
    metrics.set_projection_lag("resolver", -3)  # an end offset read before the commit: never negative
    with metrics.time_scheduling_cycle():
        pass
    assert sample(metrics, "squall_projection_lag_events", projection="readmodel") == 42
    assert sample(metrics, "squall_projection_lag_events", projection="resolver") == 0
    assert sample(metrics, "squall_scheduling_cycle_seconds_count") == 1


def test_http_middleware_labels_route_templates_and_serves_exposition(metrics: SquallMetrics) -> None:
    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["batch_id"]))

    inner = Starlette(routes=[Route("/batches/{batch_id:int}", show)])
    app = Starlette(routes=[Mount("/api/v1alpha", app=inner)])
    add_metrics(app, metrics)

    with TestClient(app) as client:
        assert client.get("/api/v1alpha/batches/7").text == "7"
        assert client.get("/api/v1alpha/batches/8").status_code == 200
        assert client.get("/no/such/page").status_code == 404
        exposition = client.get("/metrics")

    hist = "squall_http_request_duration_seconds_count"
    assert sample(metrics, hist, method="GET", route="/api/v1alpha/batches/{batch_id:int}", status="200") == 2
    assert sample(metrics, hist, method="GET", route=UNMATCHED_ROUTE, status="404") == 1
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain")
    assert "squall_http_request_duration_seconds_bucket" in exposition.text


def test_exposition_names_every_documented_metric(metrics: SquallMetrics) -> None:
    """Each metric of docs/METRICS.md is defined; that each takes a value in a real run is
    tests/e2e/test_semantics.py::test_every_documented_metric_takes_a_value."""
    metrics.observe_event(scheduled())
    metrics.observe_event(completed("Failed", "nonzero_exit", started_at=0, ended_at=1_000))
    metrics.set_ready_jobs({"alice": 1})
    metrics.set_instance_utilisation({"w-1": 0.5})
    metrics.set_projection_lag("readmodel", 0)
    text = generate_latest(metrics.registry).decode()
    doc = (Path(__file__).resolve().parents[3] / "docs" / "METRICS.md").read_text()
    documented = re.findall(r"^\| `(squall_[a-z_]+)` \|", doc, flags=re.MULTILINE)
    assert len(documented) >= 10
    for name in documented:
        assert f"# HELP {name.removesuffix('_total')} " in text or f"# HELP {name} " in text, name


def test_start_metrics_server_serves_the_registry(metrics: SquallMetrics) -> None:
    metrics.observe_event(scheduled())
    port = start_metrics_server(0, metrics=metrics)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "squall_jobs_scheduled_total 1.0" in body


def test_http_middleware_on_a_fastapi_app_with_a_mounted_ui(metrics: SquallMetrics) -> None:
    """The front end is FastAPI with the web UI mounted at /ui: both get route templates."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/api/v1alpha/batches/{batch_id}")
    async def batch(batch_id: int) -> dict[str, int]:
        return {"id": batch_id}

    async def ui_page(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ui")

    api.mount("/ui", Starlette(routes=[Route("/batches/{batch_id:int}", ui_page)]))
    add_metrics(api, metrics)
    with TestClient(api) as client:
        assert client.get("/api/v1alpha/batches/3").json() == {"id": 3}
        assert client.get("/ui/batches/3").text == "ui"

    hist = "squall_http_request_duration_seconds_count"
    assert sample(metrics, hist, method="GET", route="/api/v1alpha/batches/{batch_id}", status="200") == 1
    assert sample(metrics, hist, method="GET", route="/ui/batches/{batch_id:int}", status="200") == 1
