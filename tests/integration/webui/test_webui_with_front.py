"""The UI mounted in the real front end, as the lead will mount it: a batch submitted through the API,
projected by the real read-model projection, shown by the UI, and cancelled through the real API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from events.log import EventLog
from events.objectstore import ObjectStore
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.service import run_readmodel
from services.front.asgi_app import create_app
from services.front.front_deps import FrontDeps
from services.front.job_files import FileAccess
from services.front.startup import apply_migrations
from services.front.users import create_user
from services.jobdata import JobData
from services.webui import close_ui, create_ui
from services.webui.session import csrf_token

pytestmark = pytest.mark.postgres


async def project_everything(log: EventLog, topics: Topics, database_url: str) -> None:
    until = {(t, p): end for t in topics.fold_topics for p, end in (await log.end_offsets(t)).items()}
    await run_readmodel(log, topics, database_url, until=until)


@pytest.fixture
async def front(fresh_db: str, memory_log: EventLog, topics: Topics, gcs_store: ObjectStore,
                bucket_name: str) -> AsyncIterator[tuple]:
    await asyncio.to_thread(apply_migrations, fresh_db)
    pool = AsyncConnectionPool(fresh_db, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    async with pool.connection() as conn:
        alice = await create_user(conn, "alice")
    await gcs_store.create_bucket(bucket_name)
    app = create_app(FrontDeps(pool=pool, publisher=Publisher(memory_log, topics),
                               job_data=JobData(gcs_store, bucket_name), file_access=FileAccess(bucket_name)))
    # the UI reaches the API in-process, through the same app it is mounted in
    ui = create_ui(fresh_db, JobData(gcs_store, bucket_name), api_transport=httpx.ASGITransport(app=app))
    app.mount("/ui", ui)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front") as client:
        yield client, alice.token
    await close_ui(ui)
    await pool.close()


async def test_a_submitted_batch_is_shown_and_cancelled_through_the_api(
        front: tuple[httpx.AsyncClient, str], memory_log: EventLog, topics: Topics, fresh_db: str) -> None:
    client, token = front
    job = {"process": {"type": "docker", "image": "ubuntu:24.04", "command": ["sleep", "60"]},
           "absolute_parent_ids": [], "in_update_parent_ids": [], "attributes": {"name": "sleeper"}}
    created = await client.post("/api/v1alpha/batches/create-fast", headers={"Authorization": f"Bearer {token}"},
                                json={"batch": {"billing_project": "alice", "token": "b1", "n_jobs": 2,
                                                "attributes": {"name": "from-the-api"}},
                                      "bunch": [{**job, "job_id": 1}, {**job, "job_id": 2}]})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    await project_everything(memory_log, topics, fresh_db)

    signed = await client.post("/ui/login", data={"token": token})
    assert signed.status_code == 303
    listing = await client.get("/ui/batches")
    assert f'href="/ui/batches/{batch_id}"' in listing.text and "from-the-api" in listing.text
    page = await client.get(f"/ui/batches/{batch_id}")
    assert page.text.count('class="job state-') == 2 and "sleeper" in page.text
    assert 'id="cancel-batch"' in page.text

    cancelled = await client.post(f"/ui/batches/{batch_id}/cancel", data={"csrf": csrf_token(token)})
    assert cancelled.headers["location"] == f"/ui/batches/{batch_id}?cancel=requested"
    after = await client.get(cancelled.headers["location"])
    # the front marks the batch cancelled at once; the UI reads that flag with the read model's
    assert '<span class="badge cancelled" id="batch-state">cancelled</span>' in after.text
    assert 'id="cancel-batch"' not in after.text
    api_view = await client.get(f"/api/v1alpha/batches/{batch_id}", headers={"Authorization": f"Bearer {token}"})
    assert api_view.json()["state"] == "cancelled"


async def test_failed_jobs_are_rerun_from_the_batch_page(
        front: tuple[httpx.AsyncClient, str], memory_log: EventLog, topics: Topics, fresh_db: str) -> None:
    client, token = front
    auth = {"Authorization": f"Bearer {token}"}
    job = {"process": {"type": "docker", "image": "ubuntu:24.04", "command": ["false"]}, "absolute_parent_ids": []}
    created = await client.post("/api/v1alpha/batches/create-fast", headers=auth, json={
        "batch": {"billing_project": "alice", "token": "r1", "n_jobs": 2},
        "bunch": [{**job, "job_id": 1, "in_update_parent_ids": []}, {**job, "job_id": 2, "in_update_parent_ids": [1]}]})
    batch_id = created.json()["id"]
    await project_everything(memory_log, topics, fresh_db)
    async with AsyncConnectionPool(fresh_db, min_size=1, max_size=1) as pool, pool.connection() as conn:
        # what the resolver and a worker would have folded: 1 failed, so its child 2 was cancelled
        await conn.execute("UPDATE jobs SET state = CASE job_id WHEN 1 THEN 'Failed' ELSE 'Cancelled' END "
                           "WHERE batch_id = %s", (batch_id,))

    await client.post("/ui/login", data={"token": token})
    page = await client.get(f"/ui/batches/{batch_id}")
    assert 'id="rerun-failed"' in page.text
    rerun = await client.post(f"/ui/batches/{batch_id}/rerun-failed", data={"csrf": csrf_token(token)})
    assert rerun.status_code == 303
    after = await client.get(rerun.headers["location"])
    assert "Re-run of the failed jobs done: update 2 re-runs 2 jobs." in after.text
    await project_everything(memory_log, topics, fresh_db)
    page = await client.get(f"/ui/batches/{batch_id}")
    assert page.text.count('class="job state-') == 4
    assert f're-run as <a href="/ui/batches/{batch_id}/jobs/3">#3</a>' in page.text
    assert f're-run of <a href="/ui/batches/{batch_id}/jobs/2">#2</a>' in page.text
    copy = await client.get(f"/ui/batches/{batch_id}/jobs/4")
    assert 'id="rerun-of"' in copy.text
    again = await client.post(f"/ui/batches/{batch_id}/rerun-failed", data={"csrf": csrf_token(token)})
    shown = await client.get(again.headers["location"])
    assert "Re-run of the failed jobs failed (400: batch" in shown.text and "no jobs to re-run" in shown.text
