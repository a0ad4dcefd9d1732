"""Re-running a batch's failed jobs, and Hail's v2 queries from the unmodified Hail client, on a real stack.

The stack is `squall up`'s (real Kafka, PostgreSQL, podman workers). The batch is submitted with
hailtop 0.2.139; one job fails only while its job id is small (`$HAIL_JOB_ID`, which the worker
sets as Hail's does), so its copy, which gets a new id, succeeds: a transient failure, re-run.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from e2e_harness import StackClient
from typer.testing import CliRunner

import services.cli.jobs  # noqa: F401  (registers the commands on the app)
from services.cli import app

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman]

aioclient = pytest.importorskip("hailtop.batch_client.aioclient", reason="pip install --no-deps hail==0.2.139")

IMAGE = "localhost/busybox:latest"
SMALL = {"cpu": "0.25", "memory": "lowmem"}


def _cli(stack: StackClient, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [*args, "--api-url", stack.state.api_url, "--token", stack.state.token])


async def test_rerun_failed_and_v2_queries_through_the_hail_client(e2e_stack: StackClient) -> None:
    import aiohttp
    from hailtop import httpx as hail_httpx
    from hailtop.aiocloud.common import Session

    s = e2e_stack.state
    tag = secrets.token_urlsafe(12)
    session = Session(credentials=aioclient.HailExplicitTokenCredentials(s.token),
                      timeout=aiohttp.ClientTimeout(total=60))
    client = aioclient.BatchClient(s.billing_project, s.api_url, session, {})
    started = datetime.now(UTC) - timedelta(minutes=1)
    try:
        b = client.create_batch(attributes={"tag": tag, "name": "rerun-e2e"})
        first = b.create_job(IMAGE, ["true"], resources=SMALL, attributes={"name": "first"})
        flaky = b.create_job(IMAGE, ["sh", "-c", 'echo "job $HAIL_JOB_ID"; [ "$HAIL_JOB_ID" -gt 4 ]'],
                             parents=[first], resources=SMALL, attributes={"name": "flaky"})
        b.create_job(IMAGE, ["true"], parents=[flaky], resources=SMALL, attributes={"name": "after-flaky"})
        b.create_job(IMAGE, ["true"], parents=[first], resources=SMALL, attributes={"name": "other"})
        await b.submit(disable_progress_bar=True)
        status = await asyncio.to_thread(e2e_stack.wait, b.id)
        assert (status["state"], status["n_jobs"], status["n_failed"], status["n_cancelled"]) == ("failure", 4, 1, 1)

        async def job_ids(q: str | None) -> set[int]:
            return {j["job_id"] async for j in b.jobs(q=q, version=2)}

        async def batch_ids(q: str) -> set[int]:
            return {x.id async for x in client.list_batches(f"{q}\ntag = {tag}", version=2)}

        at = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert await job_ids("state = failed") == {2}
        assert await job_ids("state = cancelled") == {3}
        assert await job_ids("state = success") == {1, 4}
        assert await job_ids("state != done") == set()
        assert await job_ids("exit_code = 1") == {2}
        assert await job_ids("exit_code = NULL") == {3}     # never ran
        assert await job_ids('name == "flaky"') == {2}
        assert await job_ids("name =~ FLAKY") == {2, 3}
        assert await job_ids(f"start_time >= {at}") == {1, 2, 4}
        assert await job_ids(f"end_time < {at}") == set()
        assert await job_ids("duration >= 0\nduration < 600") == {1, 2, 4}
        assert await job_ids("instance_collection = highcpu") == {1, 2, 3, 4}  # 0.25 cpu, lowmem: Hail's rule
        assert await job_ids("instance =~ -") == {1, 2, 4}  # every job that ran has an instance
        assert await job_ids("cost >= 0") == {1, 2, 3, 4}
        assert await batch_ids("state = failure") == {b.id}
        assert await batch_ids("state = complete\nname = rerun-e2e") == {b.id}
        with pytest.raises(hail_httpx.ClientResponseError, match="unknown state") as err:
            await job_ids("state = finished")
        assert err.value.status == 400

        # squall rerun-failed: one update with copies of 2 (failed) and 3 (cancelled)
        result = await asyncio.to_thread(_cli, e2e_stack, "rerun-failed", str(b.id), "--wait", "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert (answer["update_id"], answer["job_ids"]) == (2, {"2": 5, "3": 6})

        status = await b.status()
        # Hail's counters: the update added 2 jobs, and the failure of job 2 stays counted
        assert (status["complete"], status["n_jobs"], status["n_completed"]) == (True, 6, 6)
        assert (status["n_succeeded"], status["n_failed"], status["n_cancelled"]) == (4, 1, 1)
        assert status["state"] == "failure"
        assert await job_ids("job_id >= 5\nstate = success") == {5, 6}
        copy = await (await client.get_job(b.id, 5)).status()
        assert copy["spec"]["absolute_parent_ids"] == [1] and copy["attributes"]["name"] == "flaky"
        child = await (await client.get_job(b.id, 6)).status()
        assert child["spec"]["in_update_parent_ids"] == [1]  # waits for the copy of its parent
        assert "job 5" in (await (await client.get_job(b.id, 5)).log())["main"]
        assert await job_ids("name = flaky") == {2, 5}

        again = await asyncio.to_thread(_cli, e2e_stack, "rerun-failed", str(b.id))
        assert again.exit_code == 2 and "no jobs to re-run" in " ".join(again.output.split())
    finally:
        await client.close()
