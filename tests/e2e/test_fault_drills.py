"""Fault drills: SIGKILL each component mid-batch (and restart Kafka); afterwards every job is
terminal, none is lost, none ran twice, and a replay of the log equals the live read models."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from drills import ContainerStarts, restart_like_a_supervisor, sigkill, worker_pids
from e2e_harness import StackClient, job, start_stack, stop_stack

from deploy import stack
from deploy.kafka import KafkaBroker
from deploy.processes import ProcessTable

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman, pytest.mark.slow]

N_ROOTS = 6
# the production default: a restarted agent must not be mistaken for a lost instance while a loaded
# CI machine takes a while to start it (a lost instance is the fleet test's subject, not the drills')
HEARTBEAT_TIMEOUT_S = 60.0


def drill_batch() -> list[dict]:
    """Roots that run for a few seconds, each with two children: 18 jobs, all expected to succeed."""
    jobs = [job(i, ["sh", "-c", f"echo root {i}; sleep 4"]) for i in range(1, N_ROOTS + 1)]
    for i in range(1, N_ROOTS + 1):
        for _child in (0, 1):
            jobs.append(job(len(jobs) + 1, ["sh", "-c", f"echo child of {i}; sleep 1"], parents=[i]))
    return jobs


def wait_until_running(client: StackClient, batch_id: int) -> None:
    client.wait_for(lambda: any(j["state"] == "Running" for j in client.jobs(batch_id).values()),
                    timeout_s=180, what="a job running")


def assert_drill_outcome(client: StackClient, batch_id: int, starts: ContainerStarts) -> None:
    batch = client.wait(batch_id, timeout_s=300)
    starts.stop()
    jobs = client.jobs(batch_id)
    assert len(jobs) == 3 * N_ROOTS, "a job was lost"
    assert {j["state"] for j in jobs.values()} == {"Success"}, {i: j["state"] for i, j in jobs.items()}
    assert batch["state"] == "success"
    executions = starts.main_starts(client.home, batch_id)
    assert set(executions) == set(jobs), f"jobs whose container start was not seen: {set(jobs) - set(executions)}"
    twice = {job_id: labels for job_id, labels in executions.items() if len(labels) > 1}
    assert not twice, f"executed more than once (attempt labels): {twice}; attempts and why they ended: " + str(
        {j: client.http.get(f"/batches/{batch_id}/jobs/{j}/attempts").json() for j in twice})
    verify = subprocess.run([sys.executable, "-c", "from services.cli import main; main()", "replay", "--all", "--verify",
                             "--database-url", client.state.database_url, "--bootstrap", client.state.bootstrap,
                             "--topic-prefix", client.state.topic_prefix],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.fixture(scope="module")
def drill_stack(kafka_bootstrap: str, pg_url: str, podman_ready: None) -> Iterator[StackClient]:
    client = start_stack(kafka_bootstrap, pg_url, workers=1, worker_cores=2, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    try:
        yield client
    finally:
        stop_stack(client)


@pytest.mark.parametrize("component", ["front", "resolver", "readmodel", "scheduler"])
def test_sigkill_a_service_mid_batch(drill_stack: StackClient, component: str) -> None:
    starts = ContainerStarts()
    batch_id = drill_stack.submit(drill_batch())
    wait_until_running(drill_stack, batch_id)
    pid = ProcessTable(drill_stack.home).pid(component)
    assert pid, f"{component} is not running"
    sigkill(pid)
    time.sleep(1.0)
    stack.up(drill_stack.home, bootstrap=drill_stack.state.bootstrap, database_url=drill_stack.state.database_url,
             port=drill_stack.state.port, topic_prefix=drill_stack.state.topic_prefix, workers=1, worker_cores=2,
             heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S, say=lambda m: None)  # idempotent: restarts only the dead one
    assert_drill_outcome(drill_stack, batch_id, starts)


def test_sigkill_a_worker_agent_mid_attempt(drill_stack: StackClient) -> None:
    starts = ContainerStarts()
    batch_id = drill_stack.submit(drill_batch())
    wait_until_running(drill_stack, batch_id)
    workers = worker_pids(drill_stack.home)
    assert workers, "no local worker is running"
    for name, pid in workers.items():
        restart_like_a_supervisor(drill_stack.home, name, pid)
    assert_drill_outcome(drill_stack, batch_id, starts)


def test_restart_the_kafka_broker_mid_batch(pg_url: str, podman_ready: None) -> None:
    """This stack runs its own embedded broker, so restarting it disturbs no other test."""
    client = start_stack(None, pg_url, workers=1, worker_cores=2, heartbeat_timeout_s=30.0)
    try:
        starts = ContainerStarts()
        batch_id = client.submit(drill_batch())
        wait_until_running(client, batch_id)
        broker = KafkaBroker(client.home / "kafka")
        broker.stop()
        time.sleep(3.0)
        assert broker.start() == client.state.bootstrap, "the broker came back on another port"
        assert_drill_outcome(client, batch_id, starts)
    finally:
        stop_stack(client)
