"""The object store's deployment: fake-gcs-server's lifecycle, `squall bucket` / `squall user
set-credentials`, and the upgrade of an older $SQUALL_HOME whose logs lived under blobs/."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

import services.cli.buckets  # noqa: F401  (registers the commands on the app)
import services.cli.users  # noqa: F401
from deploy import stack_storage
from deploy.objectstore import FakeGcsServer, answers
from deploy.processes import pid_alive
from events.objectstore.gcs import GcsObjectStore
from events.objectstore.layout import log_key, resource_usage_key, status_key
from services.cli import app
from services.front.startup import apply_migrations
from services.front.users import create_user
from services.jobdata import JobData

runner = CliRunner()


def test_fake_gcs_server_keeps_its_port_and_objects_across_restarts(tmp_path: Path) -> None:
    server = FakeGcsServer(tmp_path / "storage")
    try:
        endpoint = server.start()
        pid = server.pid()
        assert endpoint.startswith("http://127.0.0.1:") and answers(endpoint)
        assert server.start() == endpoint and server.pid() == pid  # idempotent

        async def put_then_get(put: bool) -> bytes:
            store = GcsObjectStore(endpoint=endpoint)
            try:
                if put:
                    await store.create_bucket("keep")
                    await store.put("keep", "k", b"survives")
                return await store.get("keep", "k")
            finally:
                await store.close()

        assert asyncio.run(put_then_get(True)) == b"survives"
        server.stop()
        assert pid is not None and not pid_alive(pid) and not answers(endpoint)
        assert server.start() == endpoint  # the same URL the services were given
        assert asyncio.run(put_then_get(False)) == b"survives"  # the filesystem backend kept it
    finally:
        server.stop()


@pytest.mark.postgres
def test_bucket_grants_and_credentials_from_the_command_line(fresh_db: str, tmp_path: Path) -> None:
    apply_migrations(fresh_db)

    async def users() -> None:
        async with await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as conn:
            await create_user(conn, "carol", "lab")

    asyncio.run(users())
    db = ["--database-url", fresh_db]
    ok = runner.invoke(app, ["bucket", "grant", "gs://carol-data", "--user", "carol", *db])
    assert ok.exit_code == 0 and ok.output.strip() == "gs://carol-data granted to user carol", ok.output
    again = runner.invoke(app, ["bucket", "grant", "carol-data", "--user", "carol", *db])
    assert "(already)" in again.output
    assert runner.invoke(app, ["bucket", "grant", "lab-data", "--billing-project", "lab", *db]).exit_code == 0
    listed = runner.invoke(app, ["bucket", "list", "--json", *db])
    assert [(g["bucket"], g["user"], g["billing_project"]) for g in json.loads(listed.output)] == [
        ("carol-data", "carol", None), ("lab-data", None, "lab")]
    for bad, says in ((["bucket", "grant", "x", "--user", "carol"], "not a valid bucket name"),
                      (["bucket", "grant", "squall-system", "--user", "carol"], "squall's own bucket"),
                      (["bucket", "grant", "some-data", "--user", "nobody"], "no user 'nobody'"),
                      (["bucket", "grant", "some-data"], "exactly one of"),
                      (["bucket", "revoke", "never-granted", "--user", "carol"], "no such grant")):
        result = runner.invoke(app, [*bad, *db])
        assert result.exit_code == 2 and says in result.output, (bad, result.output)
    assert runner.invoke(app, ["bucket", "revoke", "lab-data", "--billing-project", "lab", *db]).exit_code == 0

    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "carol@p.iam.gserviceaccount.com",
                               "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n", "token_uri": "https://t"}))
    set_ = runner.invoke(app, ["user", "set-credentials", "carol", str(key), *db])
    assert set_.exit_code == 0 and "carol@p.iam.gserviceaccount.com" in set_.output
    assert "BEGIN PRIVATE KEY" not in set_.output
    key.write_text("{}")
    refused = runner.invoke(app, ["user", "set-credentials", "carol", str(key), *db])
    assert refused.exit_code == 2 and "not a service-account key" in refused.output


def test_an_older_home_has_its_local_logs_moved_into_the_store(tmp_path: Path, storage_endpoint: str,
                                                               bucket_name: str) -> None:
    home = tmp_path / "home"
    attempt = home / "blobs" / "12" / "3" / "a-7"
    (attempt / "main").mkdir(parents=True)
    (attempt / "main" / "log").write_text("from before the upgrade\n")
    (attempt / "main" / "resource_usage").write_text('{"columns": ["time_msecs"], "index": [], "data": []}')
    (attempt / "status.json").write_text('{"state": "succeeded"}')
    (home / "blobs" / "stray.txt").write_text("not a job's")
    said: list[str] = []

    async def make_bucket() -> None:
        store = GcsObjectStore(endpoint=storage_endpoint)
        await store.create_bucket(bucket_name)
        await store.close()

    asyncio.run(make_bucket())
    assert stack_storage.migrate_local_blobs(home, storage_endpoint, bucket_name, said.append) == 3
    assert not (home / "blobs").exists() and (home / "blobs.migrated" / "12" / "3" / "a-7" / "status.json").exists()
    assert said and "3 log/status/usage files" in said[0]
    assert stack_storage.migrate_local_blobs(home, storage_endpoint, bucket_name, said.append) == 0  # done once

    async def read_back() -> tuple:
        store = GcsObjectStore(endpoint=storage_endpoint)
        try:
            data = JobData(store, bucket_name)
            log = await data.log(12, 3, "a-7", "main")
            return (log.data if log else None, await data.status(12, 3, "a-7"),
                    await store.exists(bucket_name, resource_usage_key(12, 3, "a-7", "main")),
                    await store.exists(bucket_name, status_key(12, 3, "a-7")),
                    await store.exists(bucket_name, log_key(12, 3, "a-7", "main")))
        finally:
            await store.close()

    assert asyncio.run(read_back()) == (b"from before the upgrade\n", {"state": "succeeded"}, True, True, True)
    assert os.path.exists(home / "blobs.migrated" / "stray.txt")  # left where it was, never uploaded
