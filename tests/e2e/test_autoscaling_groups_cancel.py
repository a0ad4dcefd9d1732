"""Beyond Hail, item 5, on a real local stack (`squall up`: Kafka, PostgreSQL, podman workers):
- the autoscaler keeps a standing worker for the pool's minimum, stops at max_live_instances (and
  `why`, `squall audit --pool` and the UI say so), and draws zones by their recent success: the local
  workers have three zones, two of which hold nothing (like cloud zones out of capacity);
- a batch submitted with nested job groups by the unmodified Hail client is shown grouped in the UI;
- cancelling a group and then the batch, with jobs running, leaves every counter exact.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from e2e_harness import StackClient, job, start_secured_stack, stop_stack
from typer.testing import CliRunner

import services.cli.replay  # noqa: F401  (registers `squall audit`)
from events.core.zones import ZoneWeight, choose_zone
from services.cli import app
from tests.conftest import SecureKafka
from tests.optional import import_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman, pytest.mark.slow]

aioclient = import_or_skip("hailtop.batch_client.aioclient", "pip install --no-deps hail==0.2.139 (make venv does)")

ZONES = "local-a,local-b:0,local-c:0"  # b and c hold no instance: every creation there is refused
POOLS = """
pools:
  - {name: standard, worker_type: standard, preemptible: true, worker_cores: 2, storage_gib: 20,
     min_instances: 1, standing_worker_cores: 1, max_live_instances: 2, max_instances: 3, max_new_per_loop: 2,
     idle_time_ms: 300000}
  - {name: highcpu, worker_type: highcpu, preemptible: true, worker_cores: 2, storage_gib: 20,
     min_instances: 0, max_live_instances: 2, max_instances: 3, max_new_per_loop: 2, idle_time_ms: 4000}
"""
IMAGE = "localhost/busybox:latest"


@pytest.fixture(scope="module")
def stack(secure_kafka: SecureKafka, pg_url: str, podman_ready: None, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[StackClient]:
    """On the secured broker, so the autoscaler appends its decisions and the read model reads them
    as their own principals, under the ACLs of deploy/kafka_acls.py."""
    pools = tmp_path_factory.mktemp("pools") / "pools.yaml"
    pools.write_text(POOLS)
    client = start_secured_stack(secure_kafka, pg_url, workers=0, worker_cores=2, pools_file=pools, zones=ZONES)
    try:
        yield client
    finally:
        stop_stack(client)


def rows(stack: StackClient, query: str, *params: Any) -> list[tuple]:
    with psycopg.connect(stack.state.database_url) as conn:
        return conn.execute(query, params).fetchall()


def decisions(stack: StackClient, pool: str) -> list[dict[str, Any]]:
    return [d for (d,) in rows(stack, "SELECT decision FROM pool_decisions WHERE pool = %s ORDER BY occurred_at, "
                                      '"offset"', pool)]


@contextmanager
def ui(stack: StackClient) -> Iterator[httpx.Client]:
    """The web UI, signed in as the stack's user (an operator)."""
    with httpx.Client(base_url=f"{stack.state.api_url}/ui", timeout=30.0) as client:
        assert client.post("/login", data={"token": stack.state.token}).status_code == 303
        yield client


def standard_job(job_id: int, seconds: int) -> dict[str, Any]:
    return {**job(job_id, ["sh", "-c", f"sleep {seconds}"]), "resources": {"cpu": "1", "memory": "standard"}}


def test_the_minimum_is_a_standing_worker_of_the_standing_size(stack: StackClient) -> None:
    stack.wait_for(lambda: rows(stack, "SELECT name FROM instances WHERE pool = 'standard' AND state = 'active' "
                                       "AND standing"), timeout_s=180, what="an active standing worker")
    [(cores, zone)] = rows(stack, "SELECT cores_mcpu, zone FROM instances WHERE pool = 'standard' AND standing "
                                  "AND state = 'active'")
    assert (cores, zone) == (1000, "local-a")  # standing_worker_cores 1; the only zone that holds anything
    first = decisions(stack, "standard")[0]
    assert (first["standing_requested"], first["requested"], first["min_instances"]) == (1, 0, 1)


def test_demand_stops_at_max_live_instances_and_why_says_so(stack: StackClient) -> None:
    batch_id = stack.submit([standard_job(j, 20) for j in range(1, 7)])  # 6 cores; the pool holds 1 + 2

    def waiting_at_the_limit() -> dict[str, Any] | None:
        for job_id in range(1, 7):
            answer = stack.http.get(f"/squall/batches/{batch_id}/jobs/{job_id}/why")
            why = answer.json() if answer.status_code == 200 else {}  # 404 until the read model has the job
            if why.get("reason_code") == "pool_at_max" and (why.get("autoscaler") or {}).get("limited_by"):
                return why
        return None

    why = stack.wait_for(waiting_at_the_limit, timeout_s=240, what="a job waiting at max_live_instances")
    assert "max_live_instances = 2" in why["message"]
    assert why["autoscaler"]["limited_by"] == "max_live_instances" and why["autoscaler"]["max_live_instances"] == 2
    assert why["autoscaler"]["waiting"].startswith("the autoscaler cannot add instances")
    live = rows(stack, "SELECT count(*) FROM instances WHERE pool = 'standard' AND state IN ('pending', 'active')")
    assert live == [(2,)]
    grew = [d for d in decisions(stack, "standard") if d["requested"]]
    assert grew and grew[0]["ready_mcpu"] >= 1000 and grew[0]["users"][0]["user"] == "squall"
    assert stack.wait(batch_id, timeout_s=300)["state"] == "success"
    for d in decisions(stack, "standard"):  # what the autoscaler saw, loop after loop, never beyond the limits
        assert d["live"] + d["requested"] + d["standing_requested"] <= 2
        assert d["live"] + d["inactive"] + d["requested"] + d["standing_requested"] <= 3


def test_zones_are_drawn_by_recent_success_as_each_decision_recorded(stack: StackClient) -> None:
    def refused() -> list[tuple]:
        return rows(stack, "SELECT name, zone FROM instances WHERE reason = 'create_failed'")

    for _ in range(10):  # each 1-job batch of the highcpu pool (min 0) makes the autoscaler draw again
        if refused():
            break
        batch_id = stack.submit([job(1, ["true"])])
        stack.wait(batch_id, timeout_s=180)
        stack.wait_for(lambda: not rows(stack, "SELECT 1 FROM instances WHERE pool = 'highcpu' AND state IN "
                                               "('pending', 'active')"), timeout_s=60, what="highcpu idle again")
    assert refused(), "two of three zones refuse everything, yet no draw landed there"
    assert {zone for _, zone in refused()} <= {"local-b", "local-c"}
    created = rows(stack, "SELECT DISTINCT zone FROM instances WHERE time_created IS NOT NULL AND zone IS NOT NULL")
    assert created == [("local-a",)]
    checked = 0
    for pool in ("standard", "highcpu"):
        history = decisions(stack, pool)
        if not history:
            continue  # the refusals came before this pool needed anything
        for d in history:  # each choice is the weighted draw the decision records, seeded by the name
            weights = [ZoneWeight(z["zone"], z["successes"], z["attempts"], 1.0) for z in d["zones"]]
            for choice in d["instances"]:
                assert choice["zone"] == choose_zone(weights, choice["instance_name"]), choice
                checked += 1
        last = {z["zone"]: z for z in history[-1]["zones"]}
        refused_here = {z: last[z] for z in ("local-b", "local-c") if last[z]["attempts"]}
        for weight in refused_here.values():
            assert weight["successes"] == 0 and weight["weight"] < last["local-a"]["weight"]
    assert checked >= 3


def test_audit_and_the_ui_show_the_autoscalers_decisions(stack: StackClient) -> None:
    result = CliRunner().invoke(app, ["audit", "--pool", "standard", "--home", str(stack.home)])
    assert result.exit_code == 0, result.output
    assert "standing worker(s) of 1 cores to keep min_instances 1" in result.output
    assert "held back: the pool is at max_live_instances (2 pending or active)" in result.output
    assert "local-a" in result.output and "zones: local-a:" in result.output
    with ui(stack) as client:
        page = client.get("/instances").text
        start = page.index('data-pool="standard"')
        pool_row = page[start:page.index("</tr>", page.index('data-pool-decision="standard"'))]
        assert "1 / 2 / 3" in pool_row and "local-a" in pool_row and "local-b" in pool_row
        history = client.get("/pools/standard").text
        assert "max_live_instances" in history and "(standing)" in history


async def _submit_grouped(stack: StackClient) -> tuple[int, dict[str, int]]:
    """align › stage-1 (3 jobs) and align › stage-2 (2 jobs, one failing), through the Hail client."""
    import aiohttp
    from hailtop.aiocloud.common import Session

    s = stack.state
    session = Session(credentials=aioclient.HailExplicitTokenCredentials(s.token),
                      timeout=aiohttp.ClientTimeout(total=60))
    client = aioclient.BatchClient(s.billing_project, s.api_url, session, {})
    small = {"cpu": "0.25", "memory": "lowmem"}
    try:
        b = client.create_batch(attributes={"name": "grouped"})
        align = b.create_job_group(attributes={"name": "align"})
        stage_1 = align.create_job_group(attributes={"name": "stage-1"})
        stage_2 = align.create_job_group(attributes={"name": "stage-2"})
        b.create_job(IMAGE, ["true"], resources=small, attributes={"name": "driver"})
        for i in range(3):
            stage_1.create_job(IMAGE, ["true"], resources=small, attributes={"name": f"partition-{i}"})
        stage_2.create_job(IMAGE, ["true"], resources=small, attributes={"name": "partition-ok"})
        stage_2.create_job(IMAGE, ["sh", "-c", "exit 3"], resources=small, attributes={"name": "partition-bad"})
        await b.submit(disable_progress_bar=True)
        ids = {"align": align.job_group_id, "stage-1": stage_1.job_group_id, "stage-2": stage_2.job_group_id}
        return b.id, ids
    finally:
        await client.close()


def test_job_groups_from_the_hail_client_are_shown_grouped(stack: StackClient) -> None:
    batch_id, groups = asyncio.run(_submit_grouped(stack))
    assert stack.wait(batch_id)["state"] == "failure"
    with ui(stack) as client:
        page = client.get(f"/batches/{batch_id}").text
        tree = page[page.index('id="job-groups"'):page.index("<h2>Jobs")]
        align = tree[tree.index(f'data-group-id="{groups["align"]}"'):]
        assert "align" in align and "5 jobs" in align and "4 succeeded" in align and "1 failed" in align
        assert tree.index(f'data-group-id="{groups["align"]}"') < tree.index(f'data-group-id="{groups["stage-2"]}"')
        stage_2 = tree[tree.index(f'data-group-id="{groups["stage-2"]}"'):]
        assert 'data-state="failure"' in stage_2[:200] and "partition-bad" in stage_2 and "exit 3" in stage_2
        group_page = client.get(f"/batches/{batch_id}/job-groups/{groups['stage-1']}").text
        assert group_page.count('class="job state-success"') == 3 and "align</a>" in group_page


def every_job(stack: StackClient, batch_id: int) -> dict[int, dict[str, Any]]:
    """Every job of the batch, sub-groups' included (Hail lists only the root group's without recursive)."""
    out: dict[int, dict[str, Any]] = {}
    last: int | None = None
    while True:
        params: dict[str, Any] = {"recursive": "true", **({"last_job_id": last} if last else {})}
        page = stack.http.get(f"/batches/{batch_id}/jobs", params=params).raise_for_status().json()
        out.update({j["job_id"]: j for j in page["jobs"]})
        last = page.get("last_job_id")
        if not last:
            return out


def test_cancelling_a_group_then_the_batch_with_jobs_running_keeps_the_counters_exact(stack: StackClient) -> None:
    n_per_group = 40
    body = {"batch": {"billing_project": stack.state.billing_project, "token": f"c{time.monotonic_ns()}",
                      "n_jobs": 3 * n_per_group, "n_job_groups": 3},
            "job_groups": [{"job_group_id": g, "attributes": {"name": f"g{g}"}} for g in (1, 2, 3)],
            "bunch": [{**job(j, ["sh", "-c", "sleep 30"]), "in_update_job_group_id": 1 + (j - 1) // n_per_group}
                      for j in range(1, 3 * n_per_group + 1)]}
    resp = stack.http.post("/batches/create-fast", json=body)
    assert resp.status_code == 200, resp.text
    batch_id = resp.json()["id"]
    stack.wait_for(lambda: any(j["state"] == "Running" for j in every_job(stack, batch_id).values()),
                   timeout_s=180, what="jobs running")
    stack.http.patch(f"/batches/{batch_id}/job-groups/2/cancel").raise_for_status()
    stack.http.patch(f"/batches/{batch_id}/job-groups/2/cancel").raise_for_status()  # twice: harmless
    stack.http.patch(f"/batches/{batch_id}/cancel").raise_for_status()
    status = stack.wait(batch_id, timeout_s=240)
    states = Counter(j["state"] for j in every_job(stack, batch_id).values())
    assert status["state"] == "cancelled" and status["n_jobs"] == 3 * n_per_group
    assert status["n_completed"] == 3 * n_per_group == sum(states.values())
    assert (status["n_succeeded"], status["n_failed"], status["n_cancelled"]) == (
        states["Success"], states["Failed"] + states["Error"], states["Cancelled"])
    assert states["Cancelled"] >= 3 * n_per_group - 16  # at most a few had started and ran to the end
    for g in (1, 2, 3):  # each group's counters are what its jobs say (40 jobs: one page of the listing)
        group = stack.http.get(f"/batches/{batch_id}/job-groups/{g}").json()
        listed = Counter(j["state"] for j in stack.http.get(f"/batches/{batch_id}/job-groups/{g}/jobs").json()["jobs"])
        assert sum(listed.values()) == group["n_jobs"] == group["n_completed"] == n_per_group, group
        assert (group["n_succeeded"], group["n_failed"], group["n_cancelled"]) == (
            listed["Success"], listed["Failed"] + listed["Error"], listed["Cancelled"]), (group, listed)
    negative = rows(stack, "SELECT count(*) FROM job_groups WHERE batch_id = %s AND least(n_jobs, n_completed, "
                           "n_succeeded, n_failed, n_cancelled) < 0", batch_id)
    assert negative == [(0,)]
    running = rows(stack, "SELECT count(*) FROM attempts WHERE batch_id = %s AND end_time IS NULL", batch_id)
    assert running == [(0,)], "every attempt of the cancelled batch ended"
    cancelled_job = next(j for j, row in every_job(stack, batch_id).items() if row["state"] == "Cancelled")
    audit = stack.http.get(f"/squall/batches/{batch_id}/jobs/{cancelled_job}/audit").json()["events"]
    assert {"JobCancelled", "JobCompleted"} & {e["event_type"] for e in audit}

