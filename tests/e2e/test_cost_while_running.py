"""Cost on a real stack (Kafka, PostgreSQL, podman workers, the web UI): it rises while a job runs,
broken down per Hail resource in the API (as hailtop reads it) and the UI; an estimate before
running; and a billing project stopped by its limit while its job still runs.

The stack is started with a price table, workers that report their running attempts every 2 s and a
billing-limit loop every second, so what takes minutes with the defaults takes seconds here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from e2e_harness import StackClient, job, start_secured_stack, stop_stack
from typer.testing import CliRunner

import services.cli.billing  # noqa: F401  (registers the commands on the app)
import services.cli.jobs  # noqa: F401
from services.cli import app
from services.front.users import create_user
from tests.conftest import SecureKafka

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman]

aioclient = pytest.importorskip("hailtop.batch_client.aioclient", reason="pip install --no-deps hail==0.2.139")

BILLING_INTERVAL_S = 2.0
LOOP_INTERVAL_S = 1.0
CPU_CORE_HOUR = 36.0  # $0.01 per core-second: a quarter core costs $0.0025 a second
PRICES = {"cpu_core_hour": CPU_CORE_HOUR, "cpu_core_hour_preemptible": CPU_CORE_HOUR, "memory_gib_hour": 0.0,
          "memory_gib_hour_preemptible": 0.0, "storage_gib_hour": 0.0, "storage_gib_hour_preemptible": 0.0,
          "service_fee_core_hour": 3.6}
RATE_PER_S = 0.25 * (CPU_CORE_HOUR + 3.6) / 3600  # a quarter-core job's cost per second


@pytest.fixture(scope="module")
def stack(secure_kafka: SecureKafka, pg_url: str, podman_ready: None, tmp_path_factory) -> Iterator[StackClient]:
    prices = tmp_path_factory.mktemp("prices") / "prices.yaml"
    prices.write_text(json.dumps(PRICES))  # JSON is YAML
    client = start_secured_stack(secure_kafka, pg_url, workers=1, worker_cores=2, prices=prices,
                                 billing_interval_s=BILLING_INTERVAL_S, billing_loop_interval_s=LOOP_INTERVAL_S)
    try:
        yield client
    finally:
        stop_stack(client)


def _cli(stack: StackClient, *args: str, token: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [*args, "--api-url", stack.state.api_url, "--token", token or stack.state.token])


def _state(stack: StackClient, batch_id: int) -> str | None:
    return stack.jobs(batch_id).get(1, {}).get("state")


def _batch_ids(stack: StackClient) -> set[int]:
    return {b["id"] for b in stack.http.get("/batches").raise_for_status().json()["batches"]}


def _breakdown(entity: dict) -> dict[str, float]:
    return {e["resource"]: e["cost"] for e in entity["cost_breakdown"]}


def test_cost_rises_while_a_job_runs_and_is_broken_down_in_the_api_and_the_ui(stack: StackClient) -> None:
    batch_id = stack.submit([job(1, ["sh", "-c", "sleep 14"])], attributes={"name": "cost-e2e"})
    assert stack.wait_for(lambda: _state(stack, batch_id) == "Running", what="job 1 running")
    seen: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _state(stack, batch_id) == "Running":
        seen.append(stack.batch(batch_id)["cost"])
        time.sleep(0.5)
    rising = [c for c in seen if c > 0]
    assert len(set(rising)) >= 2 and rising == sorted(rising), seen  # billed in steps while it ran
    final = stack.wait(batch_id)
    job_1 = stack.http.get(f"/batches/{batch_id}/jobs/1").raise_for_status().json()
    group = stack.http.get(f"/batches/{batch_id}/job-groups/0").raise_for_status().json()
    assert final["state"] == "success" and final["cost"] >= max(seen)
    # billed start to end at the end: 14 s (plus the container's start) of a quarter core
    assert 13 * RATE_PER_S <= final["cost"] <= 30 * RATE_PER_S
    assert final["cost"] == pytest.approx(job_1["cost"]) == pytest.approx(group["cost"])
    for entity in (final, group, job_1):
        assert set(_breakdown(entity)) == {"compute/n1-preemptible/1", "memory/n1-preemptible/1",
                                           "service-fee/1"}, entity["cost_breakdown"]
        assert sum(_breakdown(entity).values()) == pytest.approx(entity["cost"])
    assert _breakdown(final)["compute/n1-preemptible/1"] == pytest.approx(10 * _breakdown(final)["service-fee/1"])
    assert _breakdown(final)["memory/n1-preemptible/1"] == 0.0  # priced at 0 by this stack's table

    # the unmodified Hail client reads the same fields
    async def through_hailtop() -> tuple[dict, dict]:
        from hailtop.aiocloud.common import Session

        session = Session(credentials=aioclient.HailExplicitTokenCredentials(stack.state.token))
        client = aioclient.BatchClient(stack.state.billing_project, stack.state.api_url, session, {})
        try:
            b = await client.get_batch(batch_id)
            return await b.status(), await (await client.get_job(batch_id, 1)).status()
        finally:
            await client.close()

    hail_batch, hail_job = asyncio.run(through_hailtop())
    assert hail_batch["cost_breakdown"] == final["cost_breakdown"] and hail_job["cost"] == job_1["cost"]

    # the UI's batch page: the same breakdown
    with httpx.Client(base_url=stack.state.api_url, follow_redirects=True, timeout=30) as ui:
        ui.post("/ui/login", data={"token": stack.state.token, "next": f"/ui/batches/{batch_id}"})
        page = ui.get(f"/ui/batches/{batch_id}").raise_for_status().text
    panel = page[page.index('id="cost-breakdown"'):page.index("</section>", page.index('id="cost-breakdown"'))]
    assert re.findall(r'data-resource="([^"]+)"', panel) == sorted(_breakdown(final))
    assert f'<small id="cost-total">${final["cost"]:.4f}</small>' in panel


def test_an_estimate_before_running_through_the_api_and_the_cli(stack: StackClient, tmp_path: Path) -> None:
    before = _batch_ids(stack)
    body = {"batch": {"billing_project": stack.state.billing_project, "token": "estimate", "n_jobs": 2},
            "bunch": [job(1, ["true"]), job(2, ["true"], parents=[1])], "job_groups": [], "duration_s": 100,
            "job_durations_s": {"2": 300}}
    answer = stack.http.post("/batches/estimate", json=body).raise_for_status().json()
    assert answer["cost"] == pytest.approx(400 * RATE_PER_S)  # quarter cores, 100 s + 300 s
    assert {e["resource"] for e in answer["cost_breakdown"]} >= {"compute/n1-preemptible/1", "service-fee/1"}
    assert answer["billing_project"]["within_limit"] is True
    described = tmp_path / "batch.yaml"
    described.write_text("jobs:\n"
                         "  - {name: a, image: localhost/busybox, command: [true], cpu: '0.25', memory: lowmem}\n"
                         "  - {name: b, image: localhost/busybox, command: [true], cpu: '0.25', memory: lowmem,"
                         " parents: [a], expected_duration: 5m}\n")
    shown = _cli(stack, "submit", str(described), "--estimate", "--duration", "100s", "--json",
                 "--billing-project", stack.state.billing_project)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["cost"] == pytest.approx(answer["cost"])
    assert _batch_ids(stack) == before  # nothing was submitted


def test_a_billing_project_is_stopped_by_its_limit_while_its_job_runs(stack: StackClient) -> None:
    limit = 0.03  # about 11 s of a quarter core (with the service fee) at this stack's prices
    token = asyncio.run(_user(stack.state.database_url, "frugal", "frugal-project"))
    set_limit = CliRunner().invoke(app, ["billing-project", "set-limit", "frugal-project", str(limit),
                                         "--database-url", stack.state.database_url])
    assert set_limit.exit_code == 0, set_limit.output
    with httpx.Client(base_url=f"{stack.state.api_url}/api/v1alpha", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as frugal:
        created = frugal.post("/batches/create-fast", json={
            "batch": {"billing_project": "frugal-project", "token": "frugal", "n_jobs": 1},
            "bunch": [job(1, ["sh", "-c", "sleep 600"])], "job_groups": []})
        assert created.status_code == 200, created.text
        batch_id = created.json()["id"]
        stack.wait_for(lambda: frugal.get(f"/batches/{batch_id}/jobs/1").json().get("state") == "Running",
                       what="the job running")
        started = time.monotonic()
        status = stack.wait_for(lambda: (s := frugal.get(f"/batches/{batch_id}").json())["complete"] and s,
                                timeout_s=180, what="the billing-limit loop to stop the batch")
        elapsed = time.monotonic() - started
        job_1 = frugal.get(f"/batches/{batch_id}/jobs/1").json()
        project = frugal.get("/billing_projects/frugal-project").json()
        refused = frugal.post("/batches/create-fast", json={
            "batch": {"billing_project": "frugal-project", "token": "frugal-2", "n_jobs": 1},
            "bunch": [job(1, ["true"])], "job_groups": []})
    assert status["state"] == "cancelled" and job_1["state"] == "Cancelled"
    assert elapsed < 120  # stopped long before its 600 s sleep ended
    # it ran until the limit was reached, and not much longer: one billing interval, one loop
    # interval and the kill (podman stops the container with a timeout of its own) at most
    assert limit <= status["cost"] <= limit + RATE_PER_S * (BILLING_INTERVAL_S + LOOP_INTERVAL_S + 15)
    assert project["accrued_cost"] == pytest.approx(status["cost"])
    assert refused.status_code == 403 and "exceeded its budget" in refused.text


async def _user(database_url: str, name: str, project: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        return (await create_user(conn, name, billing_project=project)).token
