"""Fleet behaviour end to end: retries after an instance is lost, fair share between two users,
and the unmodified Hail client, on a real local stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from drills import lose_instance
from e2e_harness import StackClient, job, start_secured_stack, stop_stack

from deploy.fleet_lan import link_exists, process_start_time
from deploy.worker_hosts import WorkerHosts
from services.front.users import create_user
from tests.conftest import SecureKafka

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman, pytest.mark.slow]


@pytest.fixture(scope="module")
def fleet_stack(secure_kafka: SecureKafka, pg_url: str, podman_ready: None) -> Iterator[StackClient]:
    # a short heartbeat timeout so a lost instance is noticed within the test's patience
    client = start_secured_stack(secure_kafka, pg_url, workers=1, worker_cores=2, heartbeat_timeout_s=10.0)
    try:
        yield client
    finally:
        stop_stack(client)


def add_user(client: StackClient, name: str) -> httpx.Client:
    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(client.state.database_url, autocommit=True) as conn:
            return (await create_user(conn, name, billing_project=client.state.billing_project)).token

    token = asyncio.run(create())
    return httpx.Client(base_url=f"{client.state.api_url}/api/v1alpha",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30.0)


def attempts_of(client: StackClient, batch_id: int) -> list[dict]:
    resp = client.http.get(f"/batches/{batch_id}/jobs/1/attempts")
    return (resp.json() or []) if resp.status_code == 200 else []


def test_a_job_on_a_lost_instance_gets_a_new_attempt_and_succeeds(fleet_stack: StackClient) -> None:
    batch_id = fleet_stack.submit([job(1, ["sh", "-c", "sleep 8; echo finished"])])
    first = fleet_stack.wait_for(lambda: attempts_of(fleet_stack, batch_id)[:1], what="an attempt")[0]
    instance = first["instance_name"]
    fleet_stack.wait_for(lambda: fleet_stack.jobs(batch_id)[1]["state"] == "Running", what="job running")
    host = WorkerHosts(fleet_stack.home).get(instance)  # an isolated worker's host: its namespace is deleted
    lose_instance(fleet_stack.home, instance)  # the whole instance dies: agent, containers, disks
    b = fleet_stack.wait(batch_id, timeout_s=240)
    assert b["state"] == "success"
    attempts = fleet_stack.http.get(f"/batches/{batch_id}/jobs/1/attempts").raise_for_status().json()
    assert len(attempts) == 2, attempts
    assert attempts[0]["attempt_id"] == first["attempt_id"] and attempts[1]["instance_name"] != instance
    log = fleet_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main").text
    assert "finished" in log
    if host is not None:  # the provider found the host gone and removed what was left of it
        fleet_stack.wait_for(lambda: WorkerHosts(fleet_stack.home).get(instance) is None, timeout_s=60,
                             what="the lost host's remains removed")
        assert not link_exists(host.netns) and process_start_time(host.init_pid or 0) != host.init_start
        assert not (fleet_stack.home / "instances" / f"{instance}.cmd").exists()  # its agent is not restarted


def test_two_users_share_the_fleet(fleet_stack: StackClient) -> None:
    alice, bob = add_user(fleet_stack, "alice"), add_user(fleet_stack, "bob")
    jobs = [job(i, ["sh", "-c", "sleep 4"]) for i in range(1, 41)]

    def submit(http: httpx.Client) -> int:
        body = {"batch": {"billing_project": fleet_stack.state.billing_project, "token": str(time.time_ns()),
                          "n_jobs": len(jobs)}, "bunch": jobs, "job_groups": []}
        return int(http.post("/batches/create-fast", json=body).raise_for_status().json()["id"])

    def running(http: httpx.Client, batch_id: int) -> int:
        page = http.get(f"/batches/{batch_id}/jobs", params={"q": "running"}).raise_for_status().json()
        return len(page["jobs"])

    a_batch = submit(alice)
    fleet_stack.wait_for(lambda: running(alice, a_batch) > 0, what="alice running")
    b_batch = submit(bob)
    time.sleep(10)  # bob's demand arrives while alice holds the fleet; shares converge as her jobs end
    shares = []
    for _ in range(10):
        a, b = running(alice, a_batch), running(bob, b_batch)
        if a + b:
            shares.append(b / (a + b))
        time.sleep(1)
    for http, batch_id in ((alice, a_batch), (bob, b_batch)):
        deadline = time.monotonic() + 300
        while not http.get(f"/batches/{batch_id}").json()["complete"]:
            assert time.monotonic() < deadline
            time.sleep(1)
    mean = sum(shares) / len(shares)
    assert 0.35 <= mean <= 0.65, f"bob's share of running jobs while both had demand: {shares}"


def test_the_unmodified_hail_client_runs_a_dag(fleet_stack: StackClient) -> None:
    aioclient = pytest.importorskip("hailtop.batch_client.aioclient", reason="pip install --no-deps hail==0.2.139")
    from hailtop.aiocloud.common import Session

    async def run() -> tuple[dict, list[dict]]:
        session = Session(credentials=aioclient.HailExplicitTokenCredentials(fleet_stack.state.token))
        client = aioclient.BatchClient(fleet_stack.state.billing_project, fleet_stack.state.api_url, session, {})
        try:
            b = client.create_batch(attributes={"name": "hail-e2e"})
            first = b.create_job("localhost/busybox:latest", ["sh", "-c", "echo one"],
                                 resources={"cpu": "0.25", "memory": "lowmem"})
            second = b.create_job("localhost/busybox:latest", ["sh", "-c", "echo two"], parents=[first],
                                  resources={"cpu": "0.25", "memory": "lowmem"})
            b.create_job("localhost/busybox:latest", ["sh", "-c", "echo three"], parents=[first, second],
                         resources={"cpu": "0.25", "memory": "lowmem"})
            await b.submit(disable_progress_bar=True)
            status = await b.wait(disable_progress_bar=True)
            jobs = [j async for j in b.jobs()]
            return status, jobs
        finally:
            await client.close()

    status, jobs = asyncio.run(run())
    assert status["state"] == "success" and status["n_jobs"] == 3
    assert sorted(j["state"] for j in jobs) == ["Success"] * 3
