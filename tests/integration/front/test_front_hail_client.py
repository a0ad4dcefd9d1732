"""The unmodified Hail Batch client (hailtop 0.2.139) against a real uvicorn front end.

Install: `pip install --no-deps hail==0.2.139` plus the dev extras (what hailtop.batch_client
imports). The front runs over a memory log with the read-model projection folding it into the
test database; no resolver or scheduler runs, so jobs stay Pending/Ready — the test asserts what
the front end and the read model guarantee: submission (fast and bunched), status, job listing,
job details, cancel and delete.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from live_front import LiveFront

from services.front.server import apply_migrations
from services.front.users import create_user
from tests.optional import import_or_skip

pytestmark = [pytest.mark.hail, pytest.mark.postgres]

aioclient = import_or_skip("hailtop.batch_client.aioclient", "pip install --no-deps hail==0.2.139 (make venv does)")


async def _token(url: str) -> str:
    await asyncio.to_thread(apply_migrations, url)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return (await create_user(conn, "test", "test")).token


async def _eventually(check, timeout_s: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("max_bunch_size", [1024, 1], ids=["create-fast", "bunched"])
async def test_hail_client_submits_a_dag_reads_it_cancels_and_deletes(fresh_db, topics, tmp_path: Path,
                                                                     max_bunch_size, storage_endpoint):
    import aiohttp
    from hailtop.aiocloud.common import Session

    token = await _token(fresh_db)
    with LiveFront(fresh_db, topics, storage_endpoint) as live:
        session = Session(credentials=aioclient.HailExplicitTokenCredentials(token),
                          timeout=aiohttp.ClientTimeout(total=30))
        client = aioclient.BatchClient("test", live.url, session, {})
        try:
            batch = client.create_batch(attributes={"name": "hail-dag"})
            first = batch.create_job("busybox", ["echo", "1"])
            second = batch.create_job("busybox", ["echo", "2"], parents=[first], attributes={"name": "two"})
            batch.create_job("busybox", ["echo", "3"], parents=[first, second], resources={"cpu": "250m"})
            await batch.submit(disable_progress_bar=True, max_bunch_size=max_bunch_size)

            status = await batch.status()
            assert status["id"] == batch.id and status["n_jobs"] == 3 and status["complete"] is False
            assert status["state"] == "running" and status["attributes"] == {"name": "hail-dag"}

            jobs = await _eventually(lambda: _all_jobs(batch, 3))
            assert [j["job_id"] for j in jobs] == [1, 2, 3]
            assert {j["state"] for j in jobs} <= {"Pending", "Ready"}
            assert jobs[1]["name"] == "two"

            job = await client.get_job(batch.id, 3)
            job_status = await job.status()
            assert job_status["spec"]["resources"] == {"cpu": "250m"}
            assert job_status["spec"]["in_update_parent_ids"] == [1, 2]

            same = await client.get_batch(batch.id)
            assert (await same.status())["id"] == batch.id

            await batch.cancel()
            cancelled = await batch.status()
            assert cancelled["state"] == "cancelled"
            await batch.delete()
            with pytest.raises(aiohttp.ClientResponseError) as err:
                await client.get_batch(batch.id)
            assert err.value.status == 404
        finally:
            await client.close()


async def _all_jobs(batch, n: int):
    jobs = [j async for j in batch.jobs()]
    return jobs if len(jobs) == n else None
