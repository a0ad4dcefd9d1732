"""Billing-project limits, as Hail has them: the answer of /billing_projects, 403 on creates and
updates once a project's accrued cost reaches its limit, the loop that cancels its running batches,
the operators' edit endpoint and the CLI.

Read-model rows (batches.cost, state) are seeded directly: the projections are another component.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from front_specs import batch, dag
from typer.testing import CliRunner

import services.cli.billing  # noqa: F401  (registers the commands on the app)
from events.catalog import BatchCancelRequested
from services.cli import app
from services.front.billing_loop import (
    BILLING_LIMIT_REASON,
    cancel_over_limit_batches,
    run_billing_limit_loop,
)
from services.front.server import apply_migrations
from services.front.users import create_user, make_operator
from tests.optional import import_or_skip

pytestmark = pytest.mark.postgres

BP_KEYS = {"billing_project", "users", "status", "limit", "accrued_cost"}


async def _create(front, token: str, n: int = 1, headers=None, project: str = "alice-project") -> int:
    body = {"batch": batch(n, token=token, billing_project=project), "bunch": dag(n), "job_groups": []}
    r = await front.client.post("/api/v1alpha/batches/create-fast", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def _bill(front, batch_id: int, cost: float, *, state: str = "running", user: str = "alice",
                project: str = "alice-project", deleted: bool = False) -> None:
    """What the read model holds once the batch's attempts ended and were billed."""
    await front.sql(
        'INSERT INTO batches (batch_id, "user", billing_project, token, state, n_jobs, time_created, cost, deleted) '
        "VALUES (%s, %s, %s, 't', %s, 1, 1000, %s, %s) ON CONFLICT (batch_id) DO UPDATE "
        "SET cost = excluded.cost, state = excluded.state, deleted = excluded.deleted",
        (batch_id, user, project, state, cost, deleted))


async def _limit(front, project: str, limit: float | None) -> None:
    await front.sql("UPDATE front_billing_projects SET limit_usd = %s WHERE name = %s", (limit, project))


async def test_billing_projects_answer_the_real_limit_and_accrued_cost(front):
    fresh = (await front.client.get("/api/v1alpha/billing_projects/alice-project")).json()
    assert fresh == {"billing_project": "alice-project", "users": ["alice"], "status": "open", "limit": None,
                     "accrued_cost": 0.0}
    a, b = await _create(front, "a"), await _create(front, "b")
    await _bill(front, a, 1.25)
    await _bill(front, b, 0.5, state="complete", deleted=True)  # a deleted batch's cost was spent all the same
    bob_batch = await _create(front, "bob-1", headers=front.bob, project="bob")
    await _bill(front, bob_batch, 7.0, user="bob", project="bob")
    await _limit(front, "alice-project", 10)

    one = (await front.client.get("/api/v1alpha/billing_projects/alice-project")).json()
    assert set(one) == BP_KEYS
    assert (one["limit"], one["accrued_cost"]) == (10.0, 1.75)
    listed = (await front.client.get("/api/v1alpha/billing_projects")).json()
    assert listed == [one]  # alice sees only her projects
    bobs = (await front.client.get("/api/v1alpha/billing_projects", headers=front.bob)).json()
    assert [(p["billing_project"], p["limit"], p["accrued_cost"]) for p in bobs] == [("bob", None, 7.0)]
    assert (await front.client.get("/api/v1alpha/billing_projects/bob")).status_code == 404

    async with front.pool.connection() as conn:  # an operator sees every project, as Hail's developers do
        await make_operator(conn, "bob")
    everything = (await front.client.get("/api/v1alpha/billing_projects", headers=front.bob)).json()
    assert [p["billing_project"] for p in everything] == ["alice-project", "bob"]
    assert (await front.client.get("/api/v1alpha/billing_projects/alice-project",
                                   headers=front.bob)).json()["accrued_cost"] == 1.75


async def test_creates_and_updates_get_403_once_the_limit_is_reached(front):
    existing = await _create(front, "existing")
    await _limit(front, "alice-project", 1.0)
    await _bill(front, existing, 0.99)
    # under the limit: everything is fine
    under = await _create(front, "under")
    r = await front.client.post(f"/api/v1alpha/batches/{existing}/update-fast", json={
        "update": {"token": "u-under", "n_jobs": 1, "n_job_groups": 0}, "bunch": dag(1), "job_groups": []})
    assert r.status_code == 200, r.text

    await _bill(front, existing, 1.0)  # reached: accrued >= limit
    n_events = len(await front.events())
    refused = [
        await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1, token="over"), "bunch": dag(1), "job_groups": []}),
        await front.client.post("/api/v1alpha/batches/create", json=batch(0, token="over-slow")),
        await front.client.post(f"/api/v1alpha/batches/{under}/update-fast", json={
            "update": {"token": "u-over", "n_jobs": 1, "n_job_groups": 0}, "bunch": dag(1), "job_groups": []}),
        await front.client.post(f"/api/v1alpha/batches/{under}/updates/create",
                                json={"token": "u-over-slow", "n_jobs": 1, "n_job_groups": 0}),
    ]
    for r in refused:
        assert r.status_code == 403, r.text
        message = r.json()["message"]
        assert "'alice-project'" in message and "limit $1.0000" in message and "accrued cost $1.0000" in message
    assert len(await front.events()) == n_events  # nothing reached the log
    assert await front.sql("SELECT count(*) FROM front_batches WHERE token LIKE %s", ("over%",)) == [(0,)]

    # retries of what succeeded before the limit was reached keep their answer
    again = await front.client.post("/api/v1alpha/batches/create-fast",
                                    json={"batch": batch(1, token="under"), "bunch": dag(1), "job_groups": []})
    assert again.status_code == 200 and again.json()["id"] == under
    again = await front.client.post(f"/api/v1alpha/batches/{existing}/update-fast", json={
        "update": {"token": "u-under", "n_jobs": 1, "n_job_groups": 0}, "bunch": dag(1), "job_groups": []})
    assert again.status_code == 200, again.text

    # other projects are not affected; raising or removing the limit lets the project submit again
    await _create(front, "bobs", headers=front.bob, project="bob")
    await _limit(front, "alice-project", 2.0)
    await _create(front, "raised")
    await _limit(front, "alice-project", None)
    await _create(front, "unlimited")


async def test_a_zero_limit_refuses_even_a_project_that_spent_nothing(front):
    await _limit(front, "alice-project", 0)
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1), "bunch": dag(1), "job_groups": []})
    assert r.status_code == 403 and "limit $0.0000" in r.json()["message"]


async def test_only_operators_edit_limits(front):
    edit = "/api/v1alpha/billing_limits/alice-project/edit"
    r = await front.client.post(edit, json={"limit": 5})
    assert r.status_code == 403 and "operator" in r.json()["message"]
    async with front.pool.connection() as conn:
        await make_operator(conn, "bob")
    r = await front.client.post(edit, json={"limit": 5}, headers=front.bob)
    assert r.status_code == 200 and r.json() == {"billing_project": "alice-project", "limit": 5.0}
    assert (await front.client.get("/api/v1alpha/billing_projects/alice-project")).json()["limit"] == 5.0
    assert (await front.client.post(edit, json={"limit": "2.5"}, headers=front.bob)).json()["limit"] == 2.5
    for bad in ({"limit": -1}, {"limit": "lots"}, {"limit": True}, {}, {"limit": "1e400"}, {"limit": "nan"}):
        r = await front.client.post(edit, json=bad, headers=front.bob)
        assert r.status_code == 400 and "limit" in r.json()["message"], (bad, r.text)
    r = await front.client.post("/api/v1alpha/billing_limits/nope/edit", json={"limit": 1}, headers=front.bob)
    assert r.status_code == 404 and "'nope'" in r.json()["message"]
    r = await front.client.post(edit, json={"limit": None}, headers=front.bob)
    assert r.status_code == 200 and r.json()["limit"] is None
    assert (await front.client.get("/api/v1alpha/billing_projects/alice-project")).json()["limit"] is None


def _cancels(events) -> list[BatchCancelRequested]:
    return [e for e in events if isinstance(e, BatchCancelRequested)]


async def test_the_loop_cancels_running_batches_of_projects_over_their_limit_only(front):
    running, done, cancelled_by_user = (await _create(front, "r"), await _create(front, "d"),
                                        await _create(front, "c"))
    bobs = await _create(front, "b", headers=front.bob, project="bob")
    await _bill(front, running, 3.0)
    await _bill(front, done, 0.0, state="complete")
    await _bill(front, cancelled_by_user, 0.0)
    await front.sql("UPDATE batches SET cancelled = true WHERE batch_id = %s", (cancelled_by_user,))
    await _bill(front, bobs, 50.0, user="bob", project="bob")
    await _limit(front, "bob", 100.0)  # bob's project is under its limit

    assert await cancel_over_limit_batches(front.pool, front.deps.submissions) == []  # alice has no limit yet
    await _limit(front, "alice-project", 2.0)
    assert await cancel_over_limit_batches(front.pool, front.deps.submissions) == [running]
    [cancel] = _cancels(await front.events())
    assert (cancel.batch_id, cancel.user, cancel.reason) == (running, "alice", BILLING_LIMIT_REASON)
    assert await front.sql("SELECT batch_id FROM front_batches WHERE cancelled ORDER BY batch_id") == [(running,)]
    # the cancelled batch accepts no more work, as after an API cancel
    r = await front.client.post(f"/api/v1alpha/batches/{running}/updates/create",
                                json={"token": "late", "n_jobs": 1, "n_job_groups": 0})
    assert r.status_code == 403, r.text

    # until the read model shows it cancelled, passes (or other replicas) append the very same event
    assert await cancel_over_limit_batches(front.pool, front.deps.submissions) == [running]
    first, second = _cancels(await front.events())
    assert first.event_id == second.event_id
    await front.sql("UPDATE batches SET cancelled = true WHERE batch_id = %s", (running,))
    assert await cancel_over_limit_batches(front.pool, front.deps.submissions) == []
    assert len(_cancels(await front.events())) == 2


async def test_the_loop_runs_every_interval_until_stopped(front):
    batch_id = await _create(front, "r")
    await _bill(front, batch_id, 3.0)
    await _limit(front, "alice-project", 1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_billing_limit_loop(front.pool, front.deps.submissions, interval_s=0.05, stop=stop))
    for _ in range(100):
        if _cancels(await front.events()):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [e.batch_id for e in _cancels(await front.events())][:1] == [batch_id]


# -- the CLI ------------------------------------------------------------------------------------

def _seed_users(url: str) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await create_user(conn, "carol", "carol-project")

    apply_migrations(url)
    asyncio.run(go())


def _limit_in(url: str, project: str) -> float | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT limit_usd FROM front_billing_projects WHERE name = %s", (project,)).fetchone()
    assert row is not None
    return row[0]


def test_cli_sets_shows_and_clears_a_limit(fresh_db):
    _seed_users(fresh_db)
    runner = CliRunner()
    env = {"SQUALL_DATABASE_URL": fresh_db}
    result = runner.invoke(app, ["billing-project", "set-limit", "carol-project", "12.5"], env=env)
    assert result.exit_code == 0, result.output
    assert "$12.5000" in result.output and _limit_in(fresh_db, "carol-project") == 12.5
    shown = runner.invoke(app, ["billing-project", "show", "carol-project", "--json"], env=env)
    assert shown.exit_code == 0 and '"limit": 12.5' in shown.output and '"accrued_cost": 0.0' in shown.output
    result = runner.invoke(app, ["billing-project", "set-limit", "carol-project", "none",
                                 "--database-url", fresh_db], env={})
    assert result.exit_code == 0, result.output
    assert _limit_in(fresh_db, "carol-project") is None


def test_cli_errors_are_clear_and_exit_2(fresh_db, tmp_path: Path):
    _seed_users(fresh_db)
    runner = CliRunner()
    env = {"SQUALL_DATABASE_URL": fresh_db}
    for args, needle in ((["set-limit", "carol-project", "lots"], "not a number"),
                         (["set-limit", "--", "carol-project", "-1"], "must be a finite number of USD >= 0"),
                         (["set-limit", "nope", "5"], "'nope' does not exist"),
                         (["show", "nope"], "'nope' does not exist")):
        result = runner.invoke(app, ["billing-project", *args], env=env)
        assert result.exit_code == 2 and needle in result.output, (args, result.output)
    result = runner.invoke(app, ["billing-project", "set-limit", "carol-project", "5"], env={})
    assert result.exit_code == 2 and "SQUALL_DATABASE_URL" in result.output
    assert _limit_in(fresh_db, "carol-project") is None


# -- the unmodified Hail client ---------------------------------------------------------------------

@pytest.mark.hail
async def test_hail_client_sees_the_limit_and_is_refused_over_it(fresh_db, topics, tmp_path: Path,
                                                                 storage_endpoint: str):
    aioclient = import_or_skip("hailtop.batch_client.aioclient", "pip install --no-deps hail==0.2.139 (make venv does)")
    import aiohttp
    from hailtop.aiocloud.common import Session
    from live_front import LiveFront

    await asyncio.to_thread(apply_migrations, fresh_db)
    async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
        token = (await create_user(conn, "test", "test", operator=True)).token
    with LiveFront(fresh_db, topics, storage_endpoint, project=False) as live:
        session = Session(credentials=aioclient.HailExplicitTokenCredentials(token),
                          timeout=aiohttp.ClientTimeout(total=30))
        client = aioclient.BatchClient("test", live.url, session, {})
        try:
            bp = await client.get_billing_project("test")
            assert (bp["billing_project"], bp["limit"], bp["accrued_cost"]) == ("test", None, 0.0)
            await client.edit_billing_limit("test", 0)
            assert (await client.get_billing_project("test"))["limit"] == 0.0
            b = client.create_batch()
            b.create_job("busybox", ["true"])
            with pytest.raises(aiohttp.ClientResponseError) as refused:
                await asyncio.wait_for(b.submit(disable_progress_bar=True), 30)
            assert refused.value.status == 403
            await client.edit_billing_limit("test", None)
            b = client.create_batch()
            b.create_job("busybox", ["true"])
            await asyncio.wait_for(b.submit(disable_progress_bar=True), 30)
        finally:
            await client.close()
