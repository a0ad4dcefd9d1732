"""`squall up`'s own stack (real Kafka, PostgreSQL, every service) with simulated workers.

The front end refuses a job no worker of the stack's pools can hold (the pools file the autoscaler
reads, not built-in defaults).

Live and rebuilt read models agree after a storm of cancellations.

The load that once made `squall replay --all --verify` report more than a hundred differences:
threads creating 100-job batches and cancelling each at once (so schedulers place jobs the resolver
is cancelling: SJs racing JobCancelled), plus a big batch cancelled while it runs (kills of running
attempts). Simulated workers make the run measure the control plane, not podman. Afterwards the read model rebuilt from
offset 0 must equal the live one, row for row, and every job must be complete.

Sizes are kept to a couple of minutes on a shared 2-core machine; SQUALL_CANCEL_LOAD_SCALE=4 gives
roughly the original load.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from e2e_harness import StackClient, start_stack, stop_stack
from typer.testing import CliRunner

import services.cli.replay  # noqa: F401  (registers the commands)
from services.cli import app

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

SCALE = int(os.environ.get("SQUALL_CANCEL_LOAD_SCALE", "1"))
THREADS, BATCHES_PER_THREAD, SMALL = 4, 5 * SCALE, 100
BIG = 5_000 * SCALE


@pytest.fixture(scope="module")
def sim_stack(kafka_bootstrap: str, pg_url: str) -> Iterator[StackClient]:
    # two warm simulated 16-core workers; every job runs 2 s, so a cancel meets running attempts
    client = start_stack(kafka_bootstrap, pg_url, workers=2, worker_cores=16, simulated_job_ms=2000)
    try:
        yield client
    finally:
        stop_stack(client)


def _jobs(n: int) -> list[dict[str, Any]]:
    return [{"job_id": j, "process": {"type": "docker", "image": "localhost/busybox:latest", "command": ["true"]},
             "resources": {"cpu": "0.25", "memory": "lowmem"}} for j in range(1, n + 1)]


BUNCH = 1_000  # the front takes at most 1,024 specs a request, as Hail's client sends them


def _create(http: httpx.Client, billing_project: str, n: int) -> int:
    batch = {"billing_project": billing_project, "token": uuid.uuid4().hex, "n_jobs": n}
    if n <= BUNCH:
        resp = http.post("/batches/create-fast", json={"batch": batch, "bunch": _jobs(n), "job_groups": []},
                         timeout=120.0)
        assert resp.status_code == 200, resp.text
        return int(resp.json()["id"])
    # a bigger batch goes as Hail's client sends it: create (update 1 reserved), bunches, commit
    created = http.post("/batches/create", json=batch, timeout=120.0)
    assert created.status_code == 200, created.text
    batch_id, update_id = int(created.json()["id"]), int(created.json()["update_id"])
    jobs = _jobs(n)
    for start in range(0, n, BUNCH):
        resp = http.post(f"/batches/{batch_id}/updates/{update_id}/jobs/create", json=jobs[start:start + BUNCH],
                         timeout=120.0)
        assert resp.status_code == 200, resp.text
    committed = http.patch(f"/batches/{batch_id}/updates/{update_id}/commit", timeout=120.0)
    assert committed.status_code == 200, committed.text
    return batch_id


def _create_and_cancel(client: StackClient, made: list[int], errors: list[BaseException]) -> None:
    try:
        with httpx.Client(base_url=client.http.base_url, headers=client.http.headers, timeout=60.0) as http:
            for _ in range(BATCHES_PER_THREAD):
                batch_id = _create(http, client.state.billing_project, SMALL)
                http.patch(f"/batches/{batch_id}/cancel").raise_for_status()
                made.append(batch_id)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def test_replay_verifies_after_batches_cancelled_at_once_and_one_cancelled_mid_run(sim_stack: StackClient) -> None:
    client = sim_stack
    made: list[int] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_create_and_cancel, args=(client, made, errors)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    # the first small batches meet a free fleet (so their jobs are placed while being cancelled); then
    # the big batch fills it, and the later small ones are cancelled while they wait behind it
    client.wait_for(lambda: len(made) >= THREADS * BATCHES_PER_THREAD // 2 or errors, timeout_s=300,
                    what="half the small batches")
    big = _create(client.http, client.state.billing_project, BIG)
    # the big batch is running when it is cancelled: some of its jobs done, others running or ready
    client.wait_for(lambda: client.batch(big)["n_completed"] >= BIG // 10, timeout_s=300,
                    what="a tenth of the big batch")
    client.http.patch(f"/batches/{big}/cancel").raise_for_status()
    for t in threads:
        t.join()
    assert errors == []
    assert len(made) == THREADS * BATCHES_PER_THREAD

    for batch_id in [big, *made]:
        client.wait(batch_id, timeout_s=300)
    final = client.batch(big)
    assert final["state"] == "cancelled" and 0 < final["n_succeeded"] < BIG
    assert final["n_succeeded"] + final["n_cancelled"] + final["n_failed"] == BIG

    with psycopg.connect(client.state.database_url) as conn:  # the races this load is about did happen
        refused = dict(conn.execute("SELECT a.event_type, count(*) FROM audit a WHERE a.event_type IN "
                                    "('JobAttemptRefused', 'JobAttemptAccepted') GROUP BY 1").fetchall())
        killed = conn.execute("SELECT count(*) FROM attempts WHERE failure_cause = 'killed'").fetchone()[0]
    # an SJ refused for a job cancelled under it needs a slot to free in the milliseconds of a cancel, so
    # whether this run met one is timing; the ordering itself is pinned by
    # tests/unit/core/test_lifecycle_dependencies.py and test_readmodel_fold.py; here it is reported, not required
    print(f"verdicts {refused}, attempts killed {killed}")
    assert refused.get("JobAttemptAccepted", 0) > 0, "no placement reached the resolver"
    assert killed > 0, "the big batch was not cancelled while it ran"
    # compared at the live projection's position (a snapshot), so it need not be idle
    result = CliRunner().invoke(app, ["replay", "--all", "--verify", "--home", str(client.home)])
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output
    assert "the front's tables hold every batch, update, job group and job of the log" in result.output



def test_the_front_refuses_a_job_no_worker_of_the_stacks_pools_can_hold(sim_stack: StackClient) -> None:
    """The stack's workers have 20 GiB of scratch storage (the built-in pools would have 375)."""
    body = {"batch": {"billing_project": sim_stack.state.billing_project, "token": uuid.uuid4().hex, "n_jobs": 1},
            "bunch": [{**_jobs(1)[0], "resources": {"cpu": "1", "storage": "100Gi"}}], "job_groups": []}
    refused = sim_stack.http.post("/batches/create-fast", json=body)
    assert refused.status_code == 400, refused.text
    assert "100 GiB storage" in refused.json()["message"] and "20 GiB storage" in refused.json()["message"]
