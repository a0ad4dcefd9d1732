"""Cost at the front end: the estimate before running (POST /batches/estimate and `squall submit
--estimate`), and the billing-limit loop acting on running cost, folded by the real read-model
projection from the front's own events plus a worker's billing updates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
import pytest
from front_specs import batch, job
from live_front import LiveFront
from typer.testing import CliRunner

import services.cli.jobs  # noqa: F401  (registers the commands on the app)
from events import catalog as ev
from events.publisher import Publisher
from projections.cost import PriceTable, Pricing
from projections.readmodel.service import run_readmodel
from projections.runner import log_end
from services.cli import app
from services.front.billing_loop import BILLING_LIMIT_REASON, cancel_over_limit_batches
from services.front.startup import apply_migrations
from services.front.users import create_user

pytestmark = pytest.mark.postgres

# round prices, so every expected figure below is plain arithmetic
PRICES = PriceTable(cpu_core_hour=1.0, cpu_core_hour_preemptible=0.5, memory_gib_hour=0.25,
                    memory_gib_hour_preemptible=0.125, storage_gib_hour=0.01, storage_gib_hour_preemptible=0.01,
                    service_fee_core_hour=0.1)
GIB = 1024**3


def expected_cost(cores_mcpu: int, memory_bytes: int, storage_gib: int, preemptible: bool, seconds: float) -> float:
    hours = seconds / 3600
    cpu = PRICES.cpu_core_hour_preemptible if preemptible else PRICES.cpu_core_hour
    mem = PRICES.memory_gib_hour_preemptible if preemptible else PRICES.memory_gib_hour
    return hours * (cores_mcpu / 1000 * (cpu + PRICES.service_fee_core_hour) + memory_bytes / GIB * mem
                    + storage_gib * PRICES.storage_gib_hour)


async def _estimate(front, body, headers=None):  # type: ignore[no-untyped-def]
    return await front.client.post("/api/v1alpha/batches/estimate", json=body, headers=headers)


async def test_an_estimate_prices_requested_resources_for_the_given_duration(front) -> None:
    front.deps.pricing = Pricing(PRICES)
    jobs = [job(1, resources={"cpu": "2", "memory": "4Gi", "storage": "10Gi", "preemptible": False}),
            job(2, parents=[1], resources={"cpu": "0.5", "memory": "lowmem"}),
            job(3, parents=[1], resources={"cpu": "1"})]
    r = await _estimate(front, {"batch": batch(3), "bunch": jobs, "job_groups": [], "duration_s": 1800,
                                "job_durations_s": {"3": 7200}})
    assert r.status_code == 200, r.text
    answer = r.json()
    by_id = {j["job_id"]: j for j in answer["jobs"]}
    assert [by_id[i]["duration_s"] for i in (1, 2, 3)] == [1800, 1800, 7200]
    one = by_id[1]
    # as a submit resolves it (Hail's rule): 4 GiB asked for 2 cores of a standard worker is 2 x 3.75 GiB
    assert (one["cores_mcpu"], one["memory_bytes"], one["storage_gib"], one["preemptible"]) == (
        2000, int(7.5 * GIB), 10, False)
    for j in answer["jobs"]:  # each job: what it requested (as a submit would resolve it) x its duration
        assert j["cost"] == pytest.approx(expected_cost(j["cores_mcpu"], j["memory_bytes"], j["storage_gib"],
                                                        j["preemptible"], j["duration_s"]))
    assert one["cost"] == pytest.approx(0.5 * (2 * (1.0 + 0.1) + 7.5 * 0.25 + 10 * 0.01))
    assert answer["cost"] == pytest.approx(sum(j["cost"] for j in answer["jobs"]))
    assert answer["n_jobs"] == 3 and answer["msec_mcpu"] == 1800_000 * 2000 + 1800_000 * 500 + 7200_000 * 1000
    breakdown = {e["resource"]: e["cost"] for e in answer["cost_breakdown"]}  # Hail's shape: [{resource, cost}]
    assert [e["resource"] for e in answer["cost_breakdown"]] == sorted(breakdown)
    assert breakdown["compute/n1-nonpreemptible/1"] == pytest.approx(0.5 * 2 * 1.0)
    assert breakdown["service-fee/1"] == pytest.approx(0.5 * 2 * 0.1 + 0.5 * 0.5 * 0.1 + 2 * 1 * 0.1)
    assert sum(breakdown.values()) == pytest.approx(answer["cost"])
    assert answer["billing_project"] == {"billing_project": "alice-project", "limit": None, "accrued_cost": 0.0,
                                         "remaining": None, "within_limit": True}
    assert await front.events() == []  # an estimate appends nothing
    assert await front.sql("SELECT count(*) FROM front_batches") == [(0,)]


async def test_an_estimate_says_whether_the_batch_fits_what_is_left_of_the_limit(front) -> None:
    front.deps.pricing = Pricing(PRICES)
    await front.sql("UPDATE front_billing_projects SET limit_usd = 2 WHERE name = 'alice-project'")
    await front.sql("INSERT INTO batches (batch_id, \"user\", billing_project, token, state, time_created, cost) "
                    "VALUES (99, 'alice', 'alice-project', 't', 'complete', 1, 1.5)")
    body = {"batch": batch(1), "bunch": [job(1, resources={"cpu": "1", "preemptible": True})], "job_groups": []}
    small = (await _estimate(front, {**body, "duration_s": 60})).json()["billing_project"]
    assert small == {"billing_project": "alice-project", "limit": 2.0, "accrued_cost": 1.5, "remaining": 0.5,
                     "within_limit": True}
    big = (await _estimate(front, {**body, "duration_s": 3 * 3600})).json()
    assert big["cost"] > 0.5 and big["billing_project"]["within_limit"] is False


@pytest.mark.parametrize("change, field, message", [
    ({"duration_s": None}, "duration_s", "must be a number of seconds"),
    ({"duration_s": -1}, "duration_s", "must be a number of seconds"),
    ({"duration_s": "1h"}, "duration_s", "must be a number of seconds"),
    ({"duration_s": 10**9}, "duration_s", "from 0 to"),
    ({"job_durations_s": {"7": 10}}, "job_durations_s.7", "names no job"),
    ({"job_durations_s": {"1": True}}, "job_durations_s.1", "must be a number of seconds"),
    ({"job_durations_s": [1]}, "job_durations_s", "must be an object"),
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"bunch": [job(1, resources={"cpu": "lots"})]}, "bunch[0].resources.cpu", ""),
])
async def test_a_bad_estimate_request_is_a_400_that_names_the_field(front, change, field, message) -> None:
    body = {"batch": batch(1), "bunch": [job(1)], "job_groups": [], "duration_s": 60, **change}
    if change.get("duration_s", 0) is None:
        del body["duration_s"]
        message = "is required"
    r = await _estimate(front, body)
    assert r.status_code == 400, r.text
    assert field in r.json()["message"] and message in r.json()["message"]


async def test_an_estimate_in_someone_elses_billing_project_is_refused(front) -> None:
    r = await _estimate(front, {"batch": batch(1), "bunch": [job(1)], "job_groups": [], "duration_s": 60},
                        headers=front.bob)
    assert r.status_code == 403 and "alice-project" in r.json()["message"]


async def test_squall_submit_estimate_prints_the_cost_and_submits_nothing(fresh_db, topics, tmp_path: Path,
                                                                          storage_endpoint) -> None:
    await asyncio.to_thread(apply_migrations, fresh_db)
    async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
        token = (await create_user(conn, "carol", "carol-project")).token
    description = tmp_path / "batch.yaml"
    description.write_text(
        "jobs:\n"
        "  - {name: align, image: busybox, command: [sh, -c, 'true'], cpu: '2', expected_duration: 2h}\n"
        "  - {name: merge, image: busybox, command: [sh, -c, 'true'], parents: [align]}\n")
    runner = CliRunner()
    with LiveFront(fresh_db, topics, storage_endpoint, project=False) as live:
        flags = ["--api-url", live.url, "--token", token, "--billing-project", "carol-project"]
        shown = await asyncio.to_thread(runner.invoke, app, ["submit", str(description), "--estimate",
                                                             "--duration", "10m", *flags])
        assert shown.exit_code == 0, shown.output
        assert "estimated cost $" in shown.output and "compute/n1-preemptible/1" in shown.output
        assert "billing project carol-project: no limit" in shown.output
        as_json = await asyncio.to_thread(runner.invoke, app, ["submit", str(description), "--estimate",
                                                               "--duration", "10m", "--json", *flags])
        answer = json.loads(as_json.output)
        assert [j["duration_s"] for j in answer["jobs"]] == [7200, 600]  # align's own expected_duration wins
        assert answer["cost"] == pytest.approx(sum(j["cost"] for j in answer["jobs"]))
        missing = await asyncio.to_thread(runner.invoke, app, ["submit", str(description), "--estimate", *flags])
        assert missing.exit_code == 2 and "needs --duration" in missing.output
        bad = await asyncio.to_thread(runner.invoke, app, ["submit", str(description), "--estimate",
                                                           "--duration", "soon", *flags])
        assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output
    async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
        assert await (await conn.execute("SELECT count(*) FROM front_batches")).fetchone() == (0,)


# --- the billing-limit loop sees running cost ----------------------------------------------------

async def test_a_project_is_stopped_within_one_billing_interval_of_reaching_its_limit(front) -> None:
    """A job runs on; its worker reports it every INTERVAL of its clock; after each report the read
    model folds the log and the billing-limit loop makes a pass. The pass after the report that takes
    the accrued cost to the limit cancels the batch, so the project is stopped having spent less than
    its limit plus what the job costs in one billing interval. (Before running attempts accrued, the
    job's cost stayed 0 until it ended, and the loop never stopped it.)"""
    interval_ms, limit = 60_000, 0.05
    project = front.deps.pricing  # the read model below bills with the same (default) prices
    body = {"batch": batch(1), "bunch": [job(1, resources={"cpu": "4", "preemptible": False})], "job_groups": []}
    created = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert created.status_code == 200, created.text
    batch_id = int(created.json()["id"])
    await front.sql("UPDATE front_billing_projects SET limit_usd = %s WHERE name = 'alice-project'", (limit,))
    t0 = 1_800_000_000_000
    events = [ev.JobBecameReady(event_id="r", occurred_at=t0, producer="t", batch_id=batch_id, job_id=1,
                                reason="parents complete"),
              ev.JobAttemptAccepted(event_id="ok", occurred_at=t0, producer="t", batch_id=batch_id, job_id=1,
                                    attempt_id="a1", instance_name="w1", state="Running", scheduler_epoch=1,
                                    cores_mcpu=4000, memory_bytes=15 * GIB, storage_gib=0),
              ev.JobAttemptStarted(event_id="mjs", occurred_at=t0, producer="t", batch_id=batch_id, job_id=1,
                                   attempt_id="a1", instance_name="w1", started_at=t0)]
    publisher = Publisher(front.log, front.topics)
    await publisher.publish(events)
    per_interval = project.price({r: q * interval_ms for r, q in project.quantities(4000, 15 * GIB, 0, False)})[0]
    stopped_at = None
    for n in range(1, 200):
        await publisher.publish([ev.RunningAttemptsReported(
            event_id=f"rr{n}", occurred_at=t0 + n * interval_ms, producer="worker/w1", batch_id=batch_id,
            instance_name="w1", running_at=t0 + n * interval_ms,
            attempts=(ev.RunningAttempt(job_id=1, attempt_id="a1"),))])
        await run_readmodel(front.log, front.topics, front.deps.pool.conninfo, until=await log_end(front.log, front.topics))
        accrued = (await front.sql("SELECT cost FROM batches WHERE batch_id = %s", (batch_id,)))[0][0]
        assert accrued == pytest.approx(n * per_interval)  # the batch's cost rises while the job runs
        if await cancel_over_limit_batches(front.pool, front.deps.submissions):
            stopped_at = accrued
            break
    assert stopped_at is not None, "the billing-limit loop never saw the running job's cost"
    assert limit <= stopped_at < limit + per_interval
    cancels = [e for e in await front.events() if isinstance(e, ev.BatchCancelRequested)]
    assert [(c.batch_id, c.reason) for c in cancels] == [(batch_id, BILLING_LIMIT_REASON)]
