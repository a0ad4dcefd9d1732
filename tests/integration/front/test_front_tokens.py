"""Tokens can be listed, revoked and can expire: a revoked or expired token gets 401 from the API
and is sent to sign in by the UI from its very next request (the front keeps no token cache)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from services.cli import app
from services.webui import create_ui
from services.webui.session import COOKIE_NAME

pytestmark = pytest.mark.postgres


def _cli(*args: str) -> Result:
    import services.cli.users  # noqa: F401  (registers `squall user`)

    return CliRunner().invoke(app, list(args), env={"SQUALL_DATABASE_URL": None})


async def test_a_revoked_token_gets_401_from_the_api_at_once(front):
    r = await front.client.get("/api/v1alpha/batches")
    assert r.status_code == 200  # authenticated once: a cache would now hold the token
    token_id = (await front.sql("SELECT token_id FROM front_tokens WHERE user_name = 'alice'"))[0][0]
    result = await asyncio.to_thread(_cli, "user", "revoke-token", "alice", token_id,
                                     "--database-url", front.deps.pool.conninfo)
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    r = await front.client.get("/api/v1alpha/batches")
    assert r.status_code == 401 and "revoked" in r.json()["message"], r.text
    assert (await front.client.get("/api/v1alpha/batches", headers=front.bob)).status_code == 200


async def test_an_expired_token_gets_401(front):
    await front.sql("UPDATE front_tokens SET expires_at = 1 WHERE user_name = 'alice'")
    r = await front.client.get("/api/v1alpha/batches")
    assert r.status_code == 401, r.text
    await front.sql("UPDATE front_tokens SET expires_at = 9999999999999 WHERE user_name = 'alice'")
    assert (await front.client.get("/api/v1alpha/batches")).status_code == 200


async def test_a_revoked_token_is_sent_to_sign_in_by_the_ui_at_once(front, tmp_path: Path):
    ui = create_ui(front.deps.pool.conninfo, front.deps.job_data)
    token = front.alice["Authorization"].split()[1]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui), base_url="http://ui") as client:
        client.cookies.set(COOKIE_NAME, token)
        assert (await client.get("/batches")).status_code == 200
        await front.sql("UPDATE front_tokens SET revoked_at = 1 WHERE user_name = 'alice'")
        answer = await client.get("/batches")
        assert answer.status_code == 303 and "/login" in answer.headers["location"]
    await ui.state.ui.pool.close()


def test_cli_tokens_lists_ids_and_status_and_expiry_is_an_option(fresh_db):
    made = _cli("user", "create", "carol", "--expires-in", "30d", "--database-url", fresh_db)
    assert made.exit_code == 0, made.output
    second = _cli("user", "new-token", "carol", "--database-url", fresh_db)
    assert second.exit_code == 0, second.output
    listed = _cli("user", "tokens", "carol", "--json", "--database-url", fresh_db)
    assert listed.exit_code == 0, listed.output
    tokens = json.loads(listed.output)
    assert [t["status"] for t in tokens] == ["active", "active"]
    expiring = [t for t in tokens if t["expires_at"] is not None]
    assert len(expiring) == 1 and expiring[0]["expires_at"] - expiring[0]["created_at"] == 30 * 86400 * 1000
    assert all(t["token_id"] not in (made.output + second.output) for t in tokens), "an id is not the token"

    revoked = _cli("user", "revoke-token", "carol", tokens[0]["token_id"], "--database-url", fresh_db)
    assert revoked.exit_code == 0, revoked.output
    table = _cli("user", "tokens", "carol", "--database-url", fresh_db).output
    assert "revoked" in table and "active" in table
    again = _cli("user", "revoke-token", "carol", tokens[0]["token_id"], "--database-url", fresh_db)
    assert again.exit_code == 0 and "already revoked" in again.output
    missing = _cli("user", "revoke-token", "carol", "nope", "--database-url", fresh_db)
    assert missing.exit_code == 2 and "no token" in missing.output
    bad = _cli("user", "new-token", "carol", "--expires-in", "soon", "--database-url", fresh_db)
    assert bad.exit_code == 2 and "--expires-in" in bad.output
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM front_tokens WHERE user_name = 'carol'").fetchone() == (2,)
