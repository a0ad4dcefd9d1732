"""The producer client (events.client) and the `squall` CLI against a real uvicorn front end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import psycopg
import pytest
from live_front import LiveFront
from typer.testing import CliRunner

import events.client as client_module
import services.cli.jobs  # noqa: F401  (registers the commands on the app)
import services.cli.users  # noqa: F401
from events.client import ApiError, SettingsError, SquallClient, _bunches, load_settings
from services.cli import app
from services.front.startup import apply_migrations
from services.front.users import create_user

pytestmark = pytest.mark.postgres


async def _user(url: str) -> str:
    await asyncio.to_thread(apply_migrations, url)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return (await create_user(conn, "carol", "carol-project")).token


def test_settings_come_from_flags_then_env_then_the_stack_file(tmp_path: Path):
    (tmp_path / "stack.json").write_text(json.dumps({"api_url": "http://stack:1/", "token": "s",
                                                     "billing_project": "bp"}))
    from_stack = load_settings(env={}, home=tmp_path)
    assert (from_stack.api_url, from_stack.token, from_stack.billing_project) == ("http://stack:1", "s", "bp")
    from_env = load_settings(env={"SQUALL_API_URL": "http://env:2", "SQUALL_TOKEN": "e"}, home=tmp_path)
    assert (from_env.api_url, from_env.token) == ("http://env:2", "e")
    assert load_settings("http://flag:3", "f", env={}, home=tmp_path).token == "f"
    with pytest.raises(SettingsError, match="squall up"):
        load_settings(env={}, home=tmp_path / "empty")


def test_bunches_respect_count_and_size():
    small = [b"x" * 10] * 2500
    assert [len(b) for b in _bunches(small)] == [1024, 1024, 452]
    big = [b"y" * 300_000] * 7
    assert all(sum(len(s) + 1 for s in b) < client_module.MAX_BUNCH_BYTES for b in _bunches(big))
    assert sum(len(b) for b in _bunches(big)) == 7


def test_public_names_are_deliberate():
    assert sorted(client_module.__all__) == client_module.__all__
    for name in client_module.__all__:
        assert hasattr(client_module, name)


async def test_client_submits_fast_and_bunched_waits_reads_and_cancels(fresh_db, topics, tmp_path, monkeypatch,
                                                                       storage_endpoint):
    token = await _user(fresh_db)
    with LiveFront(fresh_db, topics, storage_endpoint) as live:
        async with SquallClient(load_settings(live.url, token, "carol-project", env={}, home=tmp_path)) as client:
            small = client.new_batch(attributes={"name": "small"})
            a = small.add_job("busybox", ["echo", "a"], name="a")
            small.add_job("busybox", ["echo", "b"], name="b", parents=[a], cpu="250m", env={"K": "v"})
            submitted = await small.submit()
            assert a.job_id == 1
            status = await submitted.status()
            assert status["n_jobs"] == 2 and status["attributes"] == {"name": "small"}

            monkeypatch.setattr(client_module, "MAX_BUNCH_SIZE", 3)  # force the create + bunches + commit path
            big = client.new_batch()
            previous = None
            for _ in range(10):
                previous = big.add_job("busybox", ["true"], parents=[previous] if previous else [])
            bunched = await big.submit()
            assert (await bunched.status())["n_jobs"] == 10
            jobs = []
            for _ in range(100):
                jobs = await bunched.jobs()
                if len(jobs) == 10:
                    break
                await asyncio.sleep(0.1)
            assert [j["job_id"] for j in jobs] == list(range(1, 11))

            with pytest.raises(TimeoutError):
                await bunched.wait(timeout_s=0.3)
            await bunched.cancel()
            assert (await bunched.status())["state"] == "cancelled"
            with pytest.raises(ApiError) as err:
                await client.batch(999_999).status()
            assert err.value.status == 404

            empty = await client.new_batch().submit()
            assert (await empty.wait(timeout_s=5))["complete"] is True


async def test_client_retries_5xx_then_succeeds():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return httpx.Response(503, json={"message": "busy"})
        return httpx.Response(200, json={"id": 1})

    settings = load_settings("http://front", "t", env={}, home=Path("/nonexistent"))
    async with SquallClient(settings, transport=httpx.MockTransport(handler)) as client:
        response = await client.request("GET", "/api/v1alpha/batches/1")
    assert response.json() == {"id": 1} and len(calls) == 3


async def test_cli_submit_batch_logs_cancel(fresh_db, topics, tmp_path, storage_endpoint):
    token = await _user(fresh_db)
    description = tmp_path / "batch.yaml"
    description.write_text(
        "attributes: {name: cli}\n"
        "jobs:\n"
        "  - {name: hello, image: busybox, command: [echo, hello]}\n"
        "  - {name: world, image: busybox, command: 'echo world', parents: [hello], cpu: 250m}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  - {name: x, image: busybox, command: [true], parents: [nope]}\n")
    runner = CliRunner()
    with LiveFront(fresh_db, topics, storage_endpoint) as live:
        env = {"SQUALL_API_URL": live.url, "SQUALL_TOKEN": token, "SQUALL_BILLING_PROJECT": "carol-project",
               "SQUALL_HOME": str(tmp_path)}

        def run(*args: str):
            return runner.invoke(app, list(args), env=env)

        result = await asyncio.to_thread(run, "submit", str(description))
        assert result.exit_code == 0, result.output
        assert "submitted batch" in result.output
        batch_id = int(result.output.split("batch")[1].split()[0])
        shown = None
        for _ in range(100):
            shown = await asyncio.to_thread(run, "batch", str(batch_id), "--json")
            if len(json.loads(shown.output)["jobs"]) == 2:
                break
            await asyncio.sleep(0.1)
        data = json.loads(shown.output)
        assert data["batch"]["id"] == batch_id and [j["name"] for j in data["jobs"]] == ["hello", "world"]
        table = await asyncio.to_thread(run, "batch", str(batch_id))
        assert "hello" in table.output and "world" in table.output

        from events.objectstore.gcs import GcsObjectStore
        from events.objectstore.layout import log_key

        await asyncio.to_thread(_seed_attempt, fresh_db, batch_id)
        store = GcsObjectStore(endpoint=storage_endpoint)
        try:
            await store.put(live.system_bucket, log_key(batch_id, 1, "a1", "main"), b"hello\n")
        finally:
            await store.close()
        logs = await asyncio.to_thread(run, "logs", str(batch_id), "1")
        assert logs.exit_code == 0 and logs.output == "hello\n"

        cancelled = await asyncio.to_thread(run, "cancel", str(batch_id))
        assert cancelled.exit_code == 0 and "cancel requested" in cancelled.output
        failed = await asyncio.to_thread(run, "submit", str(bad))
        assert failed.exit_code == 2 and "nope" in failed.output
        missing = await asyncio.to_thread(run, "wait", "424242")
        assert missing.exit_code == 2 and "404" in missing.output


def _seed_attempt(url: str, batch_id: int) -> None:
    """What the scheduler + projection would record once job 1 runs (not this test's components)."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE jobs SET current_attempt_id = 'a1', state = 'Running' WHERE batch_id = %s AND job_id = 1",
                     (batch_id,))


def test_cli_user_create_prints_a_token_that_authenticates(fresh_db):
    result = CliRunner().invoke(app, ["user", "create", "dave", "--billing-project", "dave-bp",
                                      "--database-url", fresh_db])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert len(token) >= 40
    with psycopg.connect(fresh_db) as conn:
        row = conn.execute("SELECT m.billing_project FROM front_tokens t JOIN front_billing_project_members m "
                           "ON m.user_name = t.user_name WHERE t.user_name = 'dave'").fetchone()
    assert row == ("dave-bp",)
    bad = CliRunner().invoke(app, ["user", "create", "Bad Name", "--database-url", fresh_db])
    assert bad.exit_code == 2 and "lowercase" in bad.output


def test_cli_user_create_operator_grants_the_role_and_a_later_create_keeps_it(fresh_db):
    def operator(name: str) -> bool:
        with psycopg.connect(fresh_db) as conn:
            return conn.execute("SELECT is_operator FROM front_users WHERE name = %s", (name,)).fetchone()[0]

    assert CliRunner().invoke(app, ["user", "create", "erin", "--database-url", fresh_db]).exit_code == 0
    assert not operator("erin")
    assert CliRunner().invoke(app, ["user", "create", "erin", "--operator", "--database-url", fresh_db]).exit_code == 0
    assert operator("erin")
    assert CliRunner().invoke(app, ["user", "create", "erin", "--database-url", fresh_db]).exit_code == 0
    assert operator("erin"), "a new token does not take the role away"
