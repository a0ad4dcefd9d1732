"""The unmodified Hail client (hailtop 0.2.139) lists batches and jobs with the v2 query language.

`list_batches(q, version=2)` calls /api/v2alpha/batches and `batch.jobs(q, version=2)` calls
/api/v2alpha/batches/{id}/job-groups/0/jobs?recursive=True. A real uvicorn front end over a memory
log, with the read-model projection folding it into real PostgreSQL (no resolver: jobs stay
Pending/Ready); the queries are those of Hail's own test_list_batches_v2/test_list_jobs_v2 that
do not need jobs to run (the e2e test runs them on the whole stack).
"""

from __future__ import annotations

import asyncio
import secrets

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


async def test_hail_client_lists_batches_and_jobs_with_v2_queries(fresh_db, topics, storage_endpoint: str):
    import aiohttp
    from hailtop import httpx as hail_httpx
    from hailtop.aiocloud.common import Session

    token = await _token(fresh_db)
    tag, prefix = secrets.token_urlsafe(16), secrets.token_urlsafe(8)
    with LiveFront(fresh_db, topics, storage_endpoint) as live:
        session = Session(credentials=aioclient.HailExplicitTokenCredentials(token),
                          timeout=aiohttp.ClientTimeout(total=30))
        client = aioclient.BatchClient("test", live.url, session, {})
        try:
            b1 = client.create_batch(attributes={"tag": tag, "name": "b1", "partial_match_name": f"{prefix}-b1"})
            first = b1.create_job("busybox", ["sleep", "3600"], attributes={"tag": "foo", "name": "first"})
            b1.create_job("busybox", ["true"], parents=[first], attributes={"tag": "bar"})
            b1.create_job("busybox", ["true"], resources={"cpu": "1", "memory": "highmem"})
            await b1.submit(disable_progress_bar=True)
            b2 = client.create_batch(attributes={"tag": tag, "name": "b2", "partial_match_name": f"{prefix}-b2"})
            b2.create_job("busybox", ["true"])
            await b2.submit(disable_progress_bar=True)

            async def ids(q: str | None) -> set[int]:
                return {b.id async for b in client.list_batches(q, version=2)}

            async def projected() -> bool:
                return await ids(f"tag = {tag}") == {b1.id, b2.id}

            assert await _eventually(projected), "the read model never showed both batches"
            assert await ids(None) == {b1.id, b2.id}                  # Hail's default: user = test
            assert await ids(f"tag=~{tag[:6]}") == {b1.id, b2.id}
            assert await ids(f"name=~b\ntag={tag}") == {b1.id, b2.id}
            assert await ids(f"name!~b2\ntag={tag}") == {b1.id}
            assert await ids(f"name!=b2\ntag={tag}") == {b1.id}
            assert await ids(f"{prefix[3:]}-b2\ntag={tag}") == {b2.id}
            assert await ids(f'tag={tag}\n"b2"') == {b2.id}
            assert await ids(f"state != complete\ntag = {tag}") == {b1.id, b2.id}
            assert await ids(f"state = running\ntag = {tag}") == {b1.id, b2.id}
            assert await ids(f"state == success\ntag={tag}") == set()
            assert await ids(f"user != foo\ntag={tag}") == {b1.id, b2.id}
            assert await ids(f"billing_project = test\ntag={tag}") == {b1.id, b2.id}
            assert await ids(f"start_time >= 2023-02-24T17:15:25Z\ntag = {tag}") == {b1.id, b2.id}
            assert await ids(f"start_time >= 2023-02-24T17:15:25Z\nend_time == 2023-02-24T17:15:25Z\ntag = {tag}") \
                == set()
            assert await ids(f"duration > 50000\ntag = {tag}") == set()
            assert await ids(f"cost > 1000\ntag = {tag}") == set()
            assert await ids(f"batch_id = {b1.id}\ntag = {tag}") == {b1.id}
            assert await ids(f"batch_id == {b1.id}\ntag = {tag}") == {b1.id}

            for q, message in [("batch_id >= 1 abcde", "could not parse term"),
                               ("duration >= abcd", "expected float, but found"),
                               ("batch_id >= abcd", "expected int, but found"),
                               ("state >= 1", "unexpected operator"), ("state = 1", "unknown state"),
                               ("user >= 1", "unexpected operator"), ("start_time >= 1", "expected date, but found")]:
                with pytest.raises(hail_httpx.ClientResponseError, match=message) as err:
                    await ids(q)
                assert err.value.status == 400  # a 5xx would make the client retry forever

            async def job_ids(q: str | None) -> set[int]:
                return {j["job_id"] async for j in b1.jobs(q=q, version=2)}

            assert await _eventually(lambda: _has_jobs(b1, 3))
            assert await job_ids(None) == {1, 2, 3}
            assert await job_ids("tag=foo") == {1}
            assert await job_ids("tag =~ fo") == {1}
            assert await job_ids("tag != foo") == {2}
            assert await job_ids('"tag"') == {1, 2}
            assert await job_ids("foo") == {1}
            assert await job_ids('name == "first"') == {1}
            assert await job_ids("job_id >= 2") == {2, 3}
            assert await job_ids("job_id = 1") == {1}
            assert await job_ids("state != done") == {1, 2, 3}
            assert await job_ids("state = done") == set()
            assert await job_ids("instance_collection = standard") == {1, 2}
            assert await job_ids("instance_collection = highmem") == {3}
            assert await job_ids("cost > 1000") == set()
            assert await job_ids("duration > 50000") == set()
            assert await job_ids("start_time == 2023-02-24T17:15:25Z") == set()
            assert await job_ids("instance = batch-worker") == set()
            assert await job_ids("exit_code = NULL") == {1, 2, 3}
            for q, message in [("job_id >= 1 abcde", "could not parse term"),
                               ("instance_collection >= 1", "unexpected operator"),
                               ("end_time >= 1", "expected date, but found"), ("cost >= abcd", "expected float")]:
                with pytest.raises(hail_httpx.ClientResponseError, match=message):
                    await job_ids(q)
        finally:
            await client.close()


async def _has_jobs(batch, n: int) -> bool:
    return len([j async for j in batch.jobs(version=2)]) == n
