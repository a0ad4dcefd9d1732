"""Retry policies end to end on a real local stack (podman workers): an out-of-memory kill retried with
twice the memory, a listed exit code retried with backoff until it passes, and a job preempted once
that goes on on a non-preemptible instance. Each decision shows in the attempts API, `why` and
`squall audit`. The three policies come in the three ways users give them: the attribute Hail's
unmodified client can send, the job spec's field, and the batch's default."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from e2e_harness import StackClient, job, start_secured_stack, stop_stack
from typer.testing import CliRunner

import services.cli.replay  # noqa: F401  (registers `squall audit`)
import services.cli.stack  # noqa: F401  (registers `squall preempt`)
from services.cli import app
from tests.conftest import SecureKafka

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman, pytest.mark.slow]

MIB = 2**20
PYTHON = "localhost/debian-python3:bookworm"
# Hail's smallest memory: a quarter core of a highcpu worker (924 MiB per core) is 231 MiB; twice that is 462
LOWMEM_MIB = 231
GROWS_320_MIB = ["python3", "-c", "x = bytearray(320 * 1024 * 1024); print('held', len(x) >> 20, 'MiB')"]


@pytest.fixture(scope="module")
def retry_stack(secure_kafka: SecureKafka, pg_url: str, podman_ready: None) -> Iterator[StackClient]:
    client = start_secured_stack(secure_kafka, pg_url, workers=1, worker_cores=2)
    try:
        yield client
    finally:
        stop_stack(client)


def attempts(client: StackClient, batch_id: int, job_id: int = 1) -> list[dict[str, Any]]:
    resp = client.http.get(f"/batches/{batch_id}/jobs/{job_id}/attempts")
    return (resp.json() or []) if resp.status_code == 200 else []


def why(client: StackClient, batch_id: int, job_id: int = 1) -> dict[str, Any]:
    return client.http.get(f"/squall/batches/{batch_id}/jobs/{job_id}/why").raise_for_status().json()


def audit(client: StackClient, batch_id: int, job_id: int = 1) -> str:
    result = CliRunner().invoke(app, ["audit", str(batch_id), str(job_id), "--home", str(client.home)])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_out_of_memory_kill_is_retried_with_twice_the_memory_set_through_hails_client(
        retry_stack: StackClient) -> None:
    """Hail's create_job passes no unknown keyword (it names each one), so a Hail user gives the policy
    as the `squall.retry_policy` attribute; the job needs 320 MiB and gets 231, then 462."""
    aioclient = pytest.importorskip("hailtop.batch_client.aioclient", reason="pip install --no-deps hail==0.2.139")
    from hailtop.aiocloud.common import Session

    policy = json.dumps({"oom_memory_multiplier": 2, "oom_max_memory": "1Gi"})

    async def run() -> int:
        session = Session(credentials=aioclient.HailExplicitTokenCredentials(retry_stack.state.token))
        client = aioclient.BatchClient(retry_stack.state.billing_project, retry_stack.state.api_url, session, {})
        try:
            b = client.create_batch(attributes={"name": "oom-retry"})
            b.create_job(PYTHON, GROWS_320_MIB, resources={"cpu": "0.25", "memory": "lowmem"},
                         attributes={"name": "grows", "squall.retry_policy": policy})
            await b.submit(disable_progress_bar=True)
            status = await b.wait(disable_progress_bar=True)
            assert status["state"] == "success", status
            return int(b.id)
        finally:
            await client.close()

    batch_id = asyncio.run(run())
    first, second = attempts(retry_stack, batch_id)
    assert (first["memory_bytes"], second["memory_bytes"]) == (LOWMEM_MIB * MIB, 2 * LOWMEM_MIB * MIB)
    assert first["reason"] == "out_of_memory"
    assert first["retry"]["rule"] == "oom_memory_multiplier" and first["retry"]["memory_bytes"] == 2 * LOWMEM_MIB * MIB
    assert "out of memory at 231 MiB: retried at once with 462 MiB" in first["retry"]["message"]
    assert second["reason"] == "completed" and second["retry"] is None
    assert "held 320 MiB" in retry_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main").text
    answer = why(retry_stack, batch_id)
    assert [r["rule"] for r in answer["retries"]] == ["oom_memory_multiplier"]
    assert "retry (oom_memory_multiplier): out of memory at 231 MiB: retried at once with 462 MiB" in audit(
        retry_stack, batch_id)


def test_a_listed_exit_code_is_retried_with_backoff_until_it_passes(retry_stack: StackClient) -> None:
    """Exit 42 is transient (an outage until a moment the test picks); 43, not listed, is final."""
    until = int(time.time()) + 12
    flaky = ["sh", "-c", f"if [ $(date +%s) -lt {until} ]; then echo not yet; exit 42; fi; echo passed"]
    policy = {"retry_exit_codes": [42]}
    batch_id = retry_stack.submit([job(1, flaky, retry_policy=policy),
                                   job(2, ["sh", "-c", "exit 43"], retry_policy=policy)])
    retry_stack.wait(batch_id, timeout_s=240)
    jobs = retry_stack.jobs(batch_id)
    assert (jobs[1]["state"], jobs[1]["exit_code"]) == ("Success", 0)
    assert (jobs[2]["state"], jobs[2]["exit_code"]) == ("Failed", 43) and len(attempts(retry_stack, batch_id, 2)) == 1
    tries = attempts(retry_stack, batch_id)
    assert len(tries) >= 2, tries
    *failed, passed = tries
    assert all(a["reason"] == "nonzero_exit" and a["retry"]["rule"] == "retry_exit_codes" for a in failed), failed
    assert passed["reason"] == "completed" and passed["retry"] is None
    for before, after in zip(failed, tries[1:], strict=True):  # backoff: each retry waited its not_before
        assert before["retry"]["not_before"] > before["end_time_ms"]
        assert after["start_time_ms"] >= before["retry"]["not_before"]
    assert "exit code 42 is listed in retry_policy.retry_exit_codes: retried with backoff" in audit(
        retry_stack, batch_id)


def test_after_max_preemptions_the_job_goes_on_on_a_non_preemptible_instance(retry_stack: StackClient) -> None:
    """The batch's default policy; the worker's instance is preempted as a cloud would (the local
    provider's simulation, `squall preempt`): the retry lands in the standard-np pool, which the autoscaler grows."""
    batch_id = retry_stack.submit([job(1, ["sh", "-c", "sleep 15; echo survived"],
                                       resources={"cpu": "0.25", "memory": "standard"})],
                                  retry_policy={"max_preemptions": 1})
    retry_stack.wait_for(lambda: retry_stack.jobs(batch_id).get(1, {}).get("state") == "Running",
                         what="the job running")  # {} until the read model has the batch
    [first] = attempts(retry_stack, batch_id)
    assert instance_pool(retry_stack, first["instance_name"]) == ("standard", True)
    result = CliRunner().invoke(app, ["preempt", first["instance_name"], "--home", str(retry_stack.home)])
    assert result.exit_code == 0, result.output
    b = retry_stack.wait(batch_id, timeout_s=300)
    assert b["state"] == "success", b
    first, second = attempts(retry_stack, batch_id)
    assert first["reason"] == "preempted"
    assert (first["retry"]["rule"], first["retry"]["preemptible"]) == ("max_preemptions", False)
    assert instance_pool(retry_stack, second["instance_name"]) == ("standard-np", False)
    assert "survived" in retry_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main").text
    assert "retried on a non-preemptible instance" in why(retry_stack, batch_id)["retries"][0]["message"]
    out = audit(retry_stack, batch_id)
    assert "ended Error (preempted)" in out and "retry (max_preemptions)" in out


def test_a_policy_that_could_never_work_is_refused_naming_the_field(retry_stack: StackClient) -> None:
    body = {"batch": {"billing_project": retry_stack.state.billing_project, "token": "refused", "n_jobs": 1},
            "bunch": [job(1, ["true"], retry_policy={"oom_memory_multiplier": 2, "oom_max_memory": "64Gi"})],
            "job_groups": []}
    resp = retry_stack.http.post("/batches/create-fast", json=body)
    assert resp.status_code == 400
    assert "bunch[0].retry_policy.oom_max_memory" in resp.json()["message"]


def instance_pool(client: StackClient, name: str) -> tuple[str, bool]:
    with psycopg.connect(client.state.database_url) as conn:
        row = conn.execute("SELECT pool, preemptible FROM instances WHERE name = %s", (name,)).fetchone()
    assert row is not None, name
    return row[0], row[1]
