"""Job files at submit: gs:// only, granted buckets only, for every user; and live logs from the agent.

Runs the in-process front end over PostgreSQL and the session's GCS-API server (fake-gcs-server).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from front_specs import batch, job

from events.objectstore import ObjectStore
from events.objectstore.layout import agent_secret_key, log_key, user_key_key
from services.front import buckets, credentials
from services.front.job_files import FileAccess
from services.front.users import make_operator
from worker.agent_http import AgentEndpoint, bind, new_secret
from worker.records import AttemptIds, AttemptRecords

pytestmark = pytest.mark.postgres

DATA = "bob-data"


def _files_job(job_id: int = 1, inputs: list[tuple[str, str]] = (), outputs: list[tuple[str, str]] = (),
               **extra: Any) -> dict[str, Any]:
    return job(job_id, input_files=[{"from": s, "to": d} for s, d in inputs],
               output_files=[{"from": s, "to": d} for s, d in outputs], **extra)


def _bob_batch(bunch: list[dict[str, Any]], token: str) -> dict[str, Any]:
    return {"batch": {**batch(len(bunch), token=token), "billing_project": "bob"}, "bunch": bunch, "job_groups": []}


def _snapshot(paths: list[Path]) -> dict[str, tuple[int, int, str] | None]:
    """Size, mtime and content digest of every file under the paths (None: absent)."""
    out: dict[str, tuple[int, int, str] | None] = {}
    for root in paths:
        files = [root] if not root.is_dir() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            try:
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            except FileNotFoundError:
                out[str(p)] = None
    return out


async def test_a_non_operator_cannot_name_host_files_and_nothing_on_the_host_changes(front, tmp_path: Path) -> None:
    home = tmp_path / "squall-home"  # what a stack's $SQUALL_HOME holds: the operator's token, others' logs
    (home / "blobs" / "1" / "1" / "a1" / "main").mkdir(parents=True)
    (home / "stack.json").write_text(json.dumps({"token": "operator-secret"}))
    (home / "blobs" / "1" / "1" / "a1" / "main" / "log").write_text("someone else's log\n")
    host_target = tmp_path / "pwned"
    watched = [Path("/etc/shadow"), Path("/etc/passwd"), home, host_target]
    before = _snapshot(watched)
    events_before = len(await front.events())
    attempts = {
        "/etc/shadow": _files_job(inputs=[("/etc/shadow", "/io/shadow")]),
        "file:///etc/shadow": _files_job(inputs=[("file:///etc/shadow", "/io/shadow")]),
        "$SQUALL_HOME/stack.json": _files_job(inputs=[(f"file://{home}/stack.json", "/io/stack.json")]),
        "$SQUALL_HOME log": _files_job(inputs=[(str(home / "blobs/1/1/a1/main/log"), "/io/log")]),
        "output to a host path": _files_job(outputs=[("/io/out", str(host_target))]),
        "output to file://": _files_job(outputs=[("/io/out", f"file://{host_target}")]),
        "input read from the host into /io": _files_job(inputs=[(f"gs://{DATA}/x", "/etc/cron.d/x")]),
        "output read from a host path": _files_job(outputs=[("/etc/shadow", f"gs://{DATA}/leak")]),
    }
    for what, spec in attempts.items():
        r = await front.client.post("/api/v1alpha/batches/create-fast", headers=front.bob,
                                    json=_bob_batch([spec], token=f"t-{hashlib.sha1(what.encode()).hexdigest()}"))
        assert r.status_code == 400, (what, r.text)
        message = r.json()["message"]
        assert message.startswith("bunch[0].input_files[0]") or message.startswith("bunch[0].output_files[0]"), message
        assert "job 1:" in message, message
    assert len(await front.events()) == events_before  # nothing reached the log, so nothing can run
    assert _snapshot(watched) == before
    assert not host_target.exists()


async def test_operators_are_refused_host_paths_too(front) -> None:
    async with front.pool.connection() as conn:
        await make_operator(conn, "alice")
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, token="op"), "bunch": [_files_job(inputs=[("/etc/shadow", "/io/s")])], "job_groups": []})
    assert r.status_code == 400 and "bunch[0].input_files[0].from: job 1:" in r.json()["message"]


async def test_only_granted_buckets_and_never_squalls_own(front) -> None:
    spec = _files_job(inputs=[(f"gs://{DATA}/in.txt", "/io/in.txt")], outputs=[("/io/out", f"gs://{DATA}/out")])
    refused = await front.client.post("/api/v1alpha/batches/create-fast", headers=front.bob,
                                      json=_bob_batch([spec], token="g1"))
    assert refused.status_code == 400
    assert f"bucket {DATA!r} is not granted to user 'bob'" in refused.json()["message"]
    assert refused.json()["message"].startswith("bunch[0].input_files[0].from")
    async with front.pool.connection() as conn:
        assert await buckets.grant(conn, DATA, user="bob") is True
        assert await buckets.grant(conn, DATA, user="bob") is False  # idempotent
    ok = await front.client.post("/api/v1alpha/batches/create-fast", headers=front.bob,
                                 json=_bob_batch([spec], token="g1"))
    assert ok.status_code == 200, ok.text
    # alice has no grant for bob's bucket, in a project of her own
    other = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, token="g2"), "bunch": [spec], "job_groups": []})
    assert other.status_code == 400 and "'bob-data' is not granted to user 'alice'" in other.json()["message"]
    own = _files_job(inputs=[(f"gs://{front.system_bucket}/jobs/1/1/a1/main/log", "/io/log")])
    async with front.pool.connection() as conn:
        await buckets.grant(conn, "alice-data", billing_project="alice-project")
        with pytest.raises(Exception, match="squall's own"):
            await buckets.grant(conn, front.system_bucket, user="alice", system_bucket=front.system_bucket)
    via_project = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, token="g3"), "bunch": [_files_job(outputs=[("/io/o", "gs://alice-data/o")])],
        "job_groups": []})
    assert via_project.status_code == 200, via_project.text
    sys_ = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, token="g4"), "bunch": [own], "job_groups": []})
    assert sys_.status_code == 400 and "squall's own" in sys_.json()["message"]


async def test_bunched_submission_checks_grants_per_bunch(front) -> None:
    created = await front.client.post("/api/v1alpha/batches/create", json=batch(2, token="b1"))
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    bunch = [job(1), _files_job(2, inputs=[("gs://nobody-granted/x", "/io/x")])]
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/updates/1/jobs/create", json=bunch)
    assert r.status_code == 400
    assert r.json()["message"].startswith("bunch[1].input_files[0].from") and "nobody-granted" in r.json()["message"]


async def test_real_gcs_needs_the_users_credentials_and_publishes_them_for_workers(front) -> None:
    store: ObjectStore = front.store
    front.deps.submissions.files = FileAccess(front.system_bucket, store)  # as with real GCS (no endpoint)
    async with front.pool.connection() as conn:
        await buckets.grant(conn, DATA, user="bob")
    spec = _files_job(inputs=[(f"gs://{DATA}/in.txt", "/io/in.txt")])
    r = await front.client.post("/api/v1alpha/batches/create-fast", headers=front.bob,
                                json=_bob_batch([spec], token="c1"))
    assert r.status_code == 400 and "set-credentials bob" in r.json()["message"]
    key = {"type": "service_account", "client_email": "bob@p.iam.gserviceaccount.com", "private_key": "k",
           "token_uri": "https://oauth2.example/token", "project_id": "p"}
    async with front.pool.connection() as conn:
        assert await credentials.set_credentials(conn, "bob", json.dumps(key)) == key["client_email"]
        with pytest.raises(Exception, match="not a service-account key"):
            await credentials.set_credentials(conn, "bob", json.dumps({"type": "authorized_user"}))
    r = await front.client.post("/api/v1alpha/batches/create-fast", headers=front.bob,
                                json=_bob_batch([spec], token="c1"))
    assert r.status_code == 200, r.text
    assert json.loads(await store.get(front.system_bucket, user_key_key("bob"))) == key
    key_events = [e for e in await front.events() if "private_key" in repr(e)]
    assert key_events == []  # the key is never in the log


async def test_a_running_jobs_log_comes_live_from_its_agent(front, tmp_path: Path) -> None:
    """GET .../log shows what the job printed a moment ago, via the worker's own endpoint."""
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1, token="live"), "bunch": [job(1)], "job_groups": []})
    batch_id = r.json()["id"]
    store: ObjectStore = front.store
    records = AttemptRecords(store, front.system_bucket, tmp_path / "spool")
    secret = new_secret()
    await store.put(front.system_bucket, agent_secret_key("w-live"), secret.encode())
    endpoint = AgentEndpoint(records, secret, bind("127.0.0.1", None))
    url = await endpoint.start()
    step_log = records.open_log(AttemptIds(batch_id, 1, "a1"), "main")
    try:
        await front.sql("INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, \"user\", billing_project, "
                        "state, committed, always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, "
                        "memory_bytes, storage_gib, preemptible, worker_type, current_attempt_id, time_created) "
                        "VALUES (%s, 1, 0, 1, 'alice', 'alice-project', 'Running', true, false, 20, '{}', '{}', "
                        "'{}', 1000, 1, 0, true, 'standard', 'a1', 1)", (batch_id,))
        await front.sql("INSERT INTO attempts (batch_id, job_id, attempt_id, instance_name, start_time) "
                        "VALUES (%s, 1, 'a1', 'w-live', 1000)", (batch_id,))
        await front.sql("INSERT INTO instances (name, state, agent_url) VALUES ('w-live', 'active', %s)", (url,))
        step_log.append(b"printed just now\n")
        started = asyncio.get_running_loop().time()
        raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main")
        assert raw.status_code == 200 and raw.content == b"printed just now\n"
        assert asyncio.get_running_loop().time() - started < 1.0
        assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log")).json() == {
            "main": "printed just now\n"}
        assert not await store.exists(front.system_bucket, log_key(batch_id, 1, "a1", "main"))  # not shipped yet
        # the agent restarts with a new secret: the front reads it again and still gets the log
        await store.put(front.system_bucket, agent_secret_key("w-live"), b"rotated")
        await endpoint.stop()
        endpoint = AgentEndpoint(records, "rotated", bind("127.0.0.1", None, int(url.rsplit(":", 1)[1])))
        await endpoint.start()
        step_log.append(b"and more\n")
        raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main")
        assert raw.content == b"printed just now\nand more\n"
        # once the attempt ended, the store is the answer, and the agent is no longer asked
        await step_log.close()
        await endpoint.stop()
        await front.sql("UPDATE attempts SET end_time = 2000 WHERE batch_id = %s", (batch_id,))
        raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main")
        assert raw.content == b"printed just now\nand more\n"
    finally:
        step_log.abandon()
        await endpoint.stop()


async def test_an_unreachable_agent_falls_back_to_the_chunks_in_the_store(front, tmp_path: Path) -> None:
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1, token="gone"), "bunch": [job(1)], "job_groups": []})
    batch_id = r.json()["id"]
    records = AttemptRecords(front.store, front.system_bucket, tmp_path / "spool")
    step_log = records.open_log(AttemptIds(batch_id, 1, "a1"), "main")
    step_log.append(b"shipped before the worker died\n")
    await step_log.flush()
    step_log.abandon()
    await front.store.put(front.system_bucket, agent_secret_key("w-dead"), b"whatever")  # so the agent is asked
    await front.sql("INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, \"user\", billing_project, "
                    "state, committed, always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, "
                    "memory_bytes, storage_gib, preemptible, worker_type, current_attempt_id, time_created) "
                    "VALUES (%s, 1, 0, 1, 'alice', 'alice-project', 'Running', true, false, 20, '{}', '{}', "
                    "'{}', 1000, 1, 0, true, 'standard', 'a1', 1)", (batch_id,))
    await front.sql("INSERT INTO attempts (batch_id, job_id, attempt_id, instance_name, start_time) "
                    "VALUES (%s, 1, 'a1', 'w-dead', 1000)", (batch_id,))
    await front.sql("INSERT INTO instances (name, state, agent_url) VALUES ('w-dead', 'active', "
                    "'http://127.0.0.1:9')", ())
    raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main")
    assert raw.status_code == 200 and raw.content == b"shipped before the worker died\n"
